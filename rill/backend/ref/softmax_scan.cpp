// Reference softmax scan: the paper's recurrence forward, naive softmax attention backward.
#include "rill/backend/ref/softmax_scan.h"

#include <vector>

namespace rill::ref {

namespace {

template <class T>
constexpr T kNegInf = -std::numeric_limits<T>::infinity();

template <class T>
void forward_impl(const SoftmaxScanArgs& args, const Tensor& outs, const Tensor& lses) {
  const int64_t n = args.v.size(0), len = args.v.size(1), d = args.v.size(2);
  const T* s = args.s.data<T>();
  const T* v = args.v.data<T>();
  const T* lse0 = args.lse0.defined() ? args.lse0.data<T>() : nullptr;
  const T* o0 = args.o0.defined() ? args.o0.data<T>() : nullptr;
  const T* reset = args.resets.defined() ? args.resets.data<T>() : nullptr;
  T* out = outs.data<T>();
  T* lse = lses.data<T>();
  std::vector<T> a(d);
  for (int64_t i = 0; i < n; ++i) {
    // a_k = sum exp(s - m_k) v, c_k = sum exp(s - m_k), m_k = max s: the state before step 0 is
    // the carried one, or nothing (m = -inf, c = 0, a = 0).
    T m = lse0 ? lse0[i] : kNegInf<T>;
    T c = m == kNegInf<T> ? T(0) : T(1);
    for (int64_t j = 0; j < d; ++j) a[j] = c > 0 && o0 ? o0[i * d + j] : T(0);
    for (int64_t t = 0; t < len; ++t) {
      const int64_t o = i * len + t;
      if (reset && reset[o] != 0) {
        m = kNegInf<T>, c = 0;
        for (int64_t j = 0; j < d; ++j) a[j] = 0;
      }
      const T m_new = std::max(m, s[o]);
      const T keep = m == kNegInf<T> ? T(0) : std::exp(m - m_new);  // exp(m_{k-1} - m_k)
      const T take = std::exp(s[o] - m_new);                        // exp(s_k - m_k)
      c = c * keep + take;
      m = m_new;
      for (int64_t j = 0; j < d; ++j) {
        a[j] = a[j] * keep + v[o * d + j] * take;
        out[o * d + j] = a[j] / c;  // o_k = a_k / c_k
      }
      lse[o] = m + std::log(c);
    }
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
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < len; ++t) {
      ds[i * len + t] = 0;
      for (int64_t j = 0; j < d; ++j) dv[(i * len + t) * d + j] = 0;
    }
    if (dlse0) dlse0[i] = 0;
    if (do0)
      for (int64_t j = 0; j < d; ++j) do0[i * d + j] = 0;
    int64_t start = 0;  // the first token output t sees
    for (int64_t t = 0; t < len; ++t) {
      const int64_t ot = i * len + t;
      if (reset && reset[ot] != 0) start = t;
      const T* gt = g_out + ot * d;
      // The carried state is one more token, seen while no reset has come.
      const bool state_seen =
          start == 0 && !(reset && reset[i * len] != 0) && lse0 && lse0[i] != kNegInf<T>;
      if (state_seen) {
        const T p = std::exp(lse0[i] - lse[ot]);
        T dot = 0;
        for (int64_t j = 0; j < d; ++j) {
          const T vj = o0 ? o0[i * d + j] : T(0);
          dot += gt[j] * (vj - out[ot * d + j]);
          if (do0) do0[i * d + j] += p * gt[j];
        }
        if (dlse0) dlse0[i] += p * (dot + g_lse[ot]);
      }
      for (int64_t k = start; k <= t; ++k) {
        const int64_t ok = i * len + k;
        const T p = std::exp(s[ok] - lse[ot]);
        T dot = 0;
        for (int64_t j = 0; j < d; ++j) {
          dot += gt[j] * (v[ok * d + j] - out[ot * d + j]);
          dv[ok * d + j] += p * gt[j];
        }
        ds[ok] += p * (dot + g_lse[ot]);
      }
    }
  }
}

}  // namespace

void softmax_scan(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse) {
  RILL_DISPATCH_FLOAT(args.v.dtype(), "softmax_scan", T, forward_impl<T>(args, out, lse));
}

void softmax_scan_backward(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse,
                           const Tensor& g_out, const Tensor& g_lse,
                           const SoftmaxScanGrads& grads) {
  RILL_DISPATCH_FLOAT(args.v.dtype(), "softmax_scan", T,
                      backward_impl<T>(args, out, lse, g_out, g_lse, grads));
}

}  // namespace rill::ref
