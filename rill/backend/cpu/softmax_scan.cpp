// Softmax scan kernels.
// Forward, per sequence, as a parallel prefix scan in three phases when the sequence is cut into
// chunks (one phase, the running scan, when it is not):
//   1. every chunk reduces its tokens to one element (m, u, w) under the operator, from the
//      identity (a reset inside the chunk restarts the reduction and marks the chunk);
//   2. in order, chunk c's carry-in is carry_{c-1} (+) element_{c-1} (or element_{c-1} alone when
//      chunk c-1 holds a reset); chunk 0's is the state carried into the call;
//   3. every chunk rescans its tokens from its carry-in, writing out_t = w / u and
//      lse_t = m + log u.
// All exponents are <= 0 (the operator rescales to the larger max), so scores of any magnitude
// are safe. The split depends on the shape only (bitwise identical for any thread count).
//
// Backward, per sequence, from the gated form the forward is equal to (out_t = beta_t out_{t-1}
// + alpha_t v_t with alpha_t = exp(s_t - lse_t), beta_t = exp(lse_{t-1} - lse_t), 0 at a reset):
// with R_t = g_out_t + beta_{t+1} R_{t+1} and rho_t = g_out_t . out_t - g_lse_t +
// beta_{t+1} rho_{t+1},
//   dv_t = alpha_t R_t,   ds_t = alpha_t (v_t . R_t - rho_t),
//   do0 = beta_0 R_0,     dlse0 = o0 . (beta_0 R_0) - beta_0 rho_0.
// Saved from the forward: out and lse only; memory O(T), no T x T matrix.
#include "rill/backend/cpu/softmax_scan.h"

#include <algorithm>
#include <vector>

namespace rill::cpu {

namespace {

constexpr int64_t kFewSequences = 8;  // fewer sequences than this: chunk across time
constexpr int64_t kMinChunkLen = 64;
constexpr int64_t kMaxChunks = 16;
constexpr int64_t kParallelMin = 16384;  // elements (T x D summed) below which one thread runs

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

// A scan element (m, u, w[d]) in a caller's buffer of d + 2 values: m, u, then w.
template <class T>
struct Element {
  T* p;
  T& m() { return p[0]; }
  T& u() { return p[1]; }
  T* w() { return p + 2; }
  void clear(int64_t d) {
    p[0] = kNegInf<T>, p[1] = 0;
    std::fill(p + 2, p + 2 + d, T(0));
  }
};

// One sequence's arrays.
template <class T>
struct Sequence {
  const T* s;      // [T]
  const T* v;      // [T,D]
  const T* reset;  // [T] or nullptr
  T* out;          // [T,D]
  T* lse;          // [T]
  int64_t d;

  bool resets_at(int64_t t) const { return reset && reset[t] != 0; }

  // Folds tokens [t0, t1) into e, in order; writes the outputs when `write`. Returns whether a
  // reset came (e then holds only the tokens from the last reset on).
  bool scan(Element<T> e, int64_t t0, int64_t t1, bool write) const {
    bool reset_seen = false;
    for (int64_t t = t0; t < t1; ++t) {
      if (resets_at(t)) e.clear(d), reset_seen = true;
      softmax_scan_combine(e.m(), e.u(), e.w(), s[t], T(1), v + t * d, d);
      if (write) {
        const T inv = T(1) / e.u();
        T* o = out + t * d;
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) o[j] = e.w()[j] * inv;
        lse[t] = e.m() + std::log(e.u());
      }
    }
    return reset_seen;
  }
};

template <class T>
void forward_impl(const SoftmaxScanArgs& args, const Tensor& outs, const Tensor& lses) {
  const int64_t n = args.v.size(0), len = args.v.size(1), d = args.v.size(2);
  const int64_t chunks = softmax_scan_chunks(n, len);
  const int64_t chunk_len = (len + chunks - 1) / std::max<int64_t>(chunks, 1);
  const int64_t width = d + 2;  // one element
  auto seq = [&](int64_t i) {
    return Sequence<T>{args.s.data<T>() + i * len,
                       args.v.data<T>() + i * len * d,
                       args.resets.defined() ? args.resets.data<T>() + i * len : nullptr,
                       outs.data<T>() + i * len * d,
                       lses.data<T>() + i * len,
                       d};
  };
  // carry [n, chunks, width]: the element entering each chunk (phase 2), first the carried state.
  std::vector<T> carry(size_t(n * chunks * width));
  const T* lse0 = args.lse0.defined() ? args.lse0.data<T>() : nullptr;
  const T* o0 = args.o0.defined() ? args.o0.data<T>() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    Element<T> e{carry.data() + i * chunks * width};
    e.clear(d);
    if (lse0 && lse0[i] != kNegInf<T>) {
      e.m() = lse0[i], e.u() = 1;
      for (int64_t j = 0; j < d; ++j) e.w()[j] = o0 ? o0[i * d + j] : T(0);
    }
  }
  const bool parallel = n * len * d >= kParallelMin;
  if (chunks > 1) {
    // Phase 1: each chunk's own element (chunk 0's is never needed).
    std::vector<T> element(size_t(n * chunks * width));
    std::vector<char> reset_in(size_t(n * chunks), 0);
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t u = 0; u < n * (chunks - 1); ++u) {
      const int64_t i = u / (chunks - 1), c = u % (chunks - 1);
      const int64_t t0 = c * chunk_len, t1 = std::min(len, t0 + chunk_len);
      Element<T> e{element.data() + (i * chunks + c) * width};
      e.clear(d);
      reset_in[i * chunks + c] = seq(i).scan(e, t0, t1, false);
    }
    // Phase 2: carries, in order.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 1; c < chunks; ++c) {
        Element<T> next{carry.data() + (i * chunks + c) * width};
        const T* prev = carry.data() + (i * chunks + c - 1) * width;
        const T* own = element.data() + (i * chunks + c - 1) * width;
        std::copy(reset_in[i * chunks + c - 1] ? own : prev,
                  (reset_in[i * chunks + c - 1] ? own : prev) + width, next.p);
        if (!reset_in[i * chunks + c - 1])
          softmax_scan_combine(next.m(), next.u(), next.w(), own[0], own[1], own + 2, d);
      }
  }
  // Phase 3 (or the whole scan): every chunk from its carry-in, writing the outputs.
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t u = 0; u < n * chunks; ++u) {
    const int64_t i = u / chunks, c = u % chunks;
    const int64_t t0 = c * chunk_len, t1 = std::min(len, t0 + chunk_len);
    if (t0 < t1) seq(i).scan(Element<T>{carry.data() + u * width}, t0, t1, true);
  }
}

template <class T>
void backward_impl(const SoftmaxScanArgs& args, const Tensor& outs, const Tensor& lses,
                   const Tensor& g_outs, const Tensor& g_lses, const SoftmaxScanGrads& grads) {
  const int64_t n = args.v.size(0), len = args.v.size(1), d = args.v.size(2);
  const T* s = args.s.data<T>();
  const T* v = args.v.data<T>();
  const T* lse0 = args.lse0.defined() ? args.lse0.data<T>() : nullptr;
  const T* o0 = args.o0.defined() ? args.o0.data<T>() : nullptr;
  const T* reset = args.resets.defined() ? args.resets.data<T>() : nullptr;
  const T* out = outs.data<T>();
  const T* lse = lses.data<T>();
  const T* g_out = g_outs.data<T>();
  const T* g_lse = g_lses.data<T>();
  T* ds = grads.ds.data<T>();
  T* dv = grads.dv.data<T>();
  T* dlse0 = grads.dlse0.defined() ? grads.dlse0.data<T>() : nullptr;
  T* do0 = grads.do0.defined() ? grads.do0.data<T>() : nullptr;
#pragma omp parallel if (n * len * d >= kParallelMin)
  {
    std::vector<T> r(static_cast<size_t>(d));  // beta_{t+1} R_{t+1}, then R_t
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      std::fill(r.begin(), r.end(), T(0));
      T rho = 0;  // beta_{t+1} rho_{t+1}, then rho_t
      const T before = lse0 ? lse0[i] : kNegInf<T>;
      for (int64_t t = len - 1; t >= 0; --t) {
        const int64_t o = i * len + t;
        const T* g = g_out + o * d;
        const T* vt = v + o * d;
        const T* ot = out + o * d;
        T go = 0, vr = 0;
#pragma omp simd reduction(+ : go, vr)
        for (int64_t j = 0; j < d; ++j) {
          r[j] += g[j];
          go += g[j] * ot[j];
          vr += vt[j] * r[j];
        }
        rho += go - g_lse[o];
        const T alpha = std::exp(s[o] - lse[o]);
        T* dvt = dv + o * d;
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) dvt[j] = alpha * r[j];
        ds[o] = alpha * (vr - rho);
        const T prev = t > 0 ? lse[o - 1] : before;
        const T beta =
            (reset && reset[o] != 0) || prev == kNegInf<T> ? T(0) : std::exp(prev - lse[o]);
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) r[j] *= beta;
        rho *= beta;
      }
      // r and rho now hold beta_0 R_0 and beta_0 rho_0: what reaches the carried state.
      if (do0)
        for (int64_t j = 0; j < d; ++j) do0[i * d + j] = r[j];
      if (dlse0) {
        T dot = 0;
        for (int64_t j = 0; j < d; ++j) dot += (o0 ? o0[i * d + j] : T(0)) * r[j];
        dlse0[i] = before == kNegInf<T> ? T(0) : dot - rho;
      }
    }
  }
}

}  // namespace

int64_t softmax_scan_chunks(int64_t n, int64_t len) {
  if (n >= kFewSequences) return 1;
  return std::clamp<int64_t>(len / kMinChunkLen, 1, kMaxChunks);
}

void softmax_scan(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse) {
  RILL_DISPATCH_FLOAT(args.v.dtype(), "softmax_scan", T, forward_impl<T>(args, out, lse));
}

void softmax_scan_backward(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse,
                           const Tensor& g_out, const Tensor& g_lse,
                           const SoftmaxScanGrads& grads) {
  RILL_DISPATCH_FLOAT(args.v.dtype(), "softmax_scan", T,
                      backward_impl<T>(args, out, lse, g_out, g_lse, grads));
}

}  // namespace rill::cpu
