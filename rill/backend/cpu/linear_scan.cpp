// Linear scan kernels. Work is split into units (sequence n, a tile of up to kTile contiguous
// lanes, a time chunk). Within a unit the lanes advance together one step at a time, so the inner
// loop runs across contiguous memory and vectorises. With few lanes, time is cut into chunks:
//   1. every chunk scans locally from a zero state (chunk 0 from the true h0) and, for chunks
//      after the first, keeps the product of its coefficients;
//   2. per lane tile, the chunk-end states are carried across chunks in order:
//      carry_c = P_c carry_{c-1} + local_end_c;
//   3. every chunk after the first adds (running product of its coefficients) * carry_in.
// The split depends on the shape only, so results are bitwise identical for any thread count.
// The backward's lambda_t = g_t + a_{t+1} lambda_{t+1} is the same scan run from the end, with
// the coefficient of step t taken from t + 1 (0 at the last step).
#include "rill/backend/cpu/linear_scan.h"

#include <algorithm>
#include <vector>

namespace rill::cpu {

namespace {

constexpr int64_t kTile = 256;         // lanes per unit
constexpr int64_t kFewLaneUnits = 16;  // fewer lane units than this: chunk across time
constexpr int64_t kMinChunkLen = 128;  // steps per chunk, at least
constexpr int64_t kMaxChunks = 16;
constexpr int64_t kParallelMin = 32768;  // elements below which one thread does it all

// One scan problem: h[t] = coef(t) h[prev] + x[t] in direction Rev, over [n, len, d] arrays.
// coef(t) = a[t] forward; a[t + 1] (0 at t = len - 1) in reverse (the adjoint).
template <class T, bool Rev>
struct Scan {
  const T* a;
  const T* x;
  const T* h0;  // [n, d] or nullptr (zeros); only forward
  T* out;
  int64_t n, len, d;

  int64_t time(int64_t s) const { return Rev ? len - 1 - s : s; }
  // The coefficient row of step t for lanes [j0, ...), or nullptr when it is 0.
  const T* coef_row(int64_t i, int64_t t, int64_t j0) const {
    const int64_t tc = Rev ? t + 1 : t;
    return tc < len ? a + (i * len + tc) * d + j0 : nullptr;
  }

  // Local scan of steps [s0, s1) for lanes [j0, j0 + cnt) of sequence i, from `init` (nullptr =
  // zeros); the product of the coefficients goes to prod when it is given.
  void local(int64_t i, int64_t j0, int64_t cnt, int64_t s0, int64_t s1, const T* init,
             T* prod) const {
    T h[kTile], p[kTile];
    for (int64_t k = 0; k < cnt; ++k) h[k] = init ? init[k] : T(0), p[k] = T(1);
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t t = time(s);
      const T* ar = coef_row(i, t, j0);
      const T* xr = x + (i * len + t) * d + j0;
      T* orow = out + (i * len + t) * d + j0;
      if (ar) {
#pragma omp simd
        for (int64_t k = 0; k < cnt; ++k) {
          h[k] = ar[k] * h[k] + xr[k];
          orow[k] = h[k];
          p[k] *= ar[k];
        }
      } else {
#pragma omp simd
        for (int64_t k = 0; k < cnt; ++k) {
          h[k] = xr[k];
          orow[k] = h[k];
          p[k] = T(0);
        }
      }
    }
    if (prod) std::copy(p, p + cnt, prod);
  }

  // Adds (product of the coefficients from s0 through s) * carry to each step s of [s0, s1).
  void fix_up(int64_t i, int64_t j0, int64_t cnt, int64_t s0, int64_t s1, const T* carry) const {
    T p[kTile];
    std::fill(p, p + cnt, T(1));
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t t = time(s);
      const T* ar = coef_row(i, t, j0);
      T* orow = out + (i * len + t) * d + j0;
      if (!ar) return;  // a zero coefficient cuts the carry off for the rest of the chunk
#pragma omp simd
      for (int64_t k = 0; k < cnt; ++k) {
        p[k] *= ar[k];
        orow[k] += p[k] * carry[k];
      }
    }
  }

  void run() const {
    if (n == 0 || len == 0 || d == 0) return;
    const int64_t tiles = (d + kTile - 1) / kTile, lane_units = n * tiles;
    const int64_t chunks = linear_scan_chunks(n, len, d);
    const int64_t per = (len + chunks - 1) / chunks;
    const bool parallel = n * len * d > kParallelMin;
    auto span = [&](int64_t c) { return std::pair{c * per, std::min(len, (c + 1) * per)}; };
    // [chunks, n, d]: each chunk's coefficient product, then the state carried into it.
    std::vector<T> prod(chunks > 1 ? chunks * n * d : 0), carry(prod.size());
    const int64_t units = lane_units * chunks;
#pragma omp parallel for schedule(static) if (parallel && units > 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t c = u / lane_units, lu = u % lane_units;
      const int64_t i = lu / tiles, j0 = (lu % tiles) * kTile, cnt = std::min(kTile, d - j0);
      const auto [s0, s1] = span(c);
      if (s0 >= s1) continue;
      const T* init = c == 0 && h0 ? h0 + i * d + j0 : nullptr;
      local(i, j0, cnt, s0, s1, init, c > 0 ? prod.data() + (c * n + i) * d + j0 : nullptr);
    }
    if (chunks == 1) return;
#pragma omp parallel for schedule(static) if (parallel && lane_units > 1)
    for (int64_t lu = 0; lu < lane_units; ++lu) {
      const int64_t i = lu / tiles, j0 = (lu % tiles) * kTile, cnt = std::min(kTile, d - j0);
      T state[kTile];
      const T* end0 = out + (i * len + time(span(0).second - 1)) * d + j0;
      std::copy(end0, end0 + cnt, state);
      for (int64_t c = 1; c < chunks; ++c) {
        const auto [s0, s1] = span(c);
        if (s0 >= s1) break;
        T* cin = carry.data() + (c * n + i) * d + j0;
        const T* pc = prod.data() + (c * n + i) * d + j0;
        const T* endc = out + (i * len + time(s1 - 1)) * d + j0;
#pragma omp simd
        for (int64_t k = 0; k < cnt; ++k) {
          cin[k] = state[k];
          state[k] = pc[k] * state[k] + endc[k];
        }
      }
    }
    const int64_t fix_units = lane_units * (chunks - 1);
#pragma omp parallel for schedule(static) if (parallel && fix_units > 1)
    for (int64_t u = 0; u < fix_units; ++u) {
      const int64_t c = 1 + u / lane_units, lu = u % lane_units;
      const int64_t i = lu / tiles, j0 = (lu % tiles) * kTile, cnt = std::min(kTile, d - j0);
      const auto [s0, s1] = span(c);
      if (s0 >= s1) continue;
      fix_up(i, j0, cnt, s0, s1, carry.data() + (c * n + i) * d + j0);
    }
  }
};

template <class T>
void forward_impl(const LinearScanArgs& args, const Tensor& out) {
  Scan<T, false>{
      args.a.data<T>(), args.b.data<T>(), args.h0.defined() ? args.h0.data<T>() : nullptr,
      out.data<T>(),    args.b.size(0),   args.b.size(1),
      args.b.size(2)}
      .run();
}

template <class T>
void backward_impl(const LinearScanArgs& args, const Tensor& hs, const Tensor& gs,
                   const LinearScanGrads& grads) {
  const int64_t n = args.b.size(0), len = args.b.size(1), d = args.b.size(2);
  const T* a = args.a.data<T>();
  const T* h = hs.data<T>();
  const T* h0 = args.h0.defined() ? args.h0.data<T>() : nullptr;
  T* db = grads.db.data<T>();
  T* da = grads.da.data<T>();
  // lambda (the total gradient of every h_t) is written into db.
  Scan<T, true>{a, gs.data<T>(), nullptr, db, n, len, d}.run();
  // da_t = lambda_t h_{t-1}: rows of d lanes, h_{-1} = h0 (zeros when undefined).
  const int64_t rows = n * len;
#pragma omp parallel for schedule(static) if (rows * d > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r / len, t = r % len;
    const T* lr = db + r * d;
    T* dr = da + r * d;
    const T* hp = t > 0 ? h + (r - 1) * d : (h0 ? h0 + i * d : nullptr);
    if (hp) {
#pragma omp simd
      for (int64_t k = 0; k < d; ++k) dr[k] = lr[k] * hp[k];
    } else {
      std::fill(dr, dr + d, T(0));
    }
  }
  if (grads.dh0.defined()) {
    T* dh0 = grads.dh0.data<T>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < d; ++k)
        dh0[i * d + k] = len > 0 ? a[i * len * d + k] * db[i * len * d + k] : T(0);
  }
}

}  // namespace

int64_t linear_scan_chunks(int64_t n, int64_t len, int64_t d) {
  const int64_t lane_units = n * ((d + kTile - 1) / kTile);
  if (lane_units >= kFewLaneUnits || len < 2 * kMinChunkLen) return 1;
  return std::min(kMaxChunks, len / kMinChunkLen);
}

void linear_scan(const LinearScanArgs& args, const Tensor& out) {
  RILL_DISPATCH_FLOAT(args.b.dtype(), "linear_scan", T, forward_impl<T>(args, out));
}

void linear_scan_backward(const LinearScanArgs& args, const Tensor& h, const Tensor& g,
                          const LinearScanGrads& grads) {
  RILL_DISPATCH_FLOAT(args.b.dtype(), "linear_scan", T, backward_impl<T>(args, h, g, grads));
}

}  // namespace rill::cpu
