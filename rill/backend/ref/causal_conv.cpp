// Reference causal depthwise convolution: the definitions, one element at a time.
#include "rill/backend/ref/causal_conv.h"

namespace rill::ref {

namespace {

template <class T>
struct Padded {  // xp[b, s] for s in [-(W-1), T)
  const T* x;
  const T* prev;
  int64_t t_len, w_len, d;
  T at(int64_t b, int64_t s, int64_t c) const {
    if (s >= 0) return x[(b * t_len + s) * d + c];
    return prev ? prev[(b * (w_len - 1) + (w_len - 1 + s)) * d + c] : T(0);
  }
};

}  // namespace

void causal_conv1d_forward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& y) {
  RILL_DISPATCH_FLOAT(x.dtype(), "causal_conv1d", T, {
    const int64_t B = x.size(0), L = x.size(1), D = x.size(2), W = w.size(0);
    Padded<T> xp{x.data<T>(), prev.defined() ? prev.data<T>() : nullptr, L, W, D};
    const T* wp = w.data<T>();
    T* yp = y.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < L; ++t)
        for (int64_t c = 0; c < D; ++c) {
          T acc = 0;
          for (int64_t j = 0; j < W; ++j) acc += wp[j * D + c] * xp.at(b, t - j, c);
          yp[(b * L + t) * D + c] = acc;
        }
  });
}

void causal_conv1d_backward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& dy,
                            const Tensor& dx, const Tensor& dw, const Tensor& dprev) {
  RILL_DISPATCH_FLOAT(x.dtype(), "causal_conv1d", T, {
    const int64_t B = x.size(0), L = x.size(1), D = x.size(2), W = w.size(0);
    Padded<T> xp{x.data<T>(), prev.defined() ? prev.data<T>() : nullptr, L, W, D};
    const T* wp = w.data<T>();
    const T* g = dy.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = -(W - 1); s < L; ++s)
        for (int64_t c = 0; c < D; ++c) {
          T acc = 0;
          for (int64_t j = 0; j < W; ++j)
            if (s + j >= 0 && s + j < L) acc += wp[j * D + c] * g[(b * L + s + j) * D + c];
          if (s >= 0)
            dx.data<T>()[(b * L + s) * D + c] = acc;
          else if (dprev.defined())
            dprev.data<T>()[(b * (W - 1) + W - 1 + s) * D + c] = acc;
        }
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < D; ++c) {
        T acc = 0;
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < L; ++t) acc += g[(b * L + t) * D + c] * xp.at(b, t - j, c);
        dw.data<T>()[j * D + c] = acc;
      }
  });
}

}  // namespace rill::ref
