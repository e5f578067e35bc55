// Reference LayerNorm / RMSNorm kernels: plain scalar loops, one row at a time. LayerNorm's
// variance is taken in two passes (around the mean) so that a large offset costs no precision.
#include "rill/backend/ref/norm.h"

#include <cmath>

namespace rill::ref {

namespace {

// Pointer to a tensor's data, or null when the tensor is undefined (an absent weight or bias).
template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// `centered` picks LayerNorm (subtract the mean) over RMSNorm; mean may be null for RMSNorm.
template <class T>
void norm_forward_impl(bool centered, const T* x, const T* w, const T* b, T eps, T* y, T* mean,
                       T* rstd, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T mu = 0;
    if (centered) {
      for (int64_t i = 0; i < n; ++i) mu += xr[i];
      mu /= static_cast<T>(n);
    }
    T ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += (xr[i] - mu) * (xr[i] - mu);
    const T rs = T(1) / std::sqrt(ss / static_cast<T>(n) + eps);
    for (int64_t i = 0; i < n; ++i) {
      T v = (xr[i] - mu) * rs;
      if (w) v *= w[i];
      if (b) v += b[i];
      y[r * n + i] = v;
    }
    if (mean) mean[r] = mu;
    rstd[r] = rs;
  }
}

// With xhat = (x - mean) * rstd and g = dy * weight:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (RMSNorm drops the mean(g) term),
// dweight = sum over rows of dy * xhat, dbias = sum over rows of dy.
template <class T>
void norm_backward_impl(bool centered, const T* x, const T* w, const T* mean, const T* rstd,
                        const T* dy, T* dx, T* dw, T* db, int64_t rows, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (dw) dw[i] = 0;
    if (db) db[i] = 0;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    const T* gr = dy + r * n;
    const T mu = centered ? mean[r] : T(0);
    const T rs = rstd[r];
    T sum_g = 0, sum_gx = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T xh = (xr[i] - mu) * rs;
      const T g = w ? gr[i] * w[i] : gr[i];
      sum_g += g;
      sum_gx += g * xh;
      if (dw) dw[i] += gr[i] * xh;
      if (db) db[i] += gr[i];
    }
    if (!dx) continue;
    const T mean_g = centered ? sum_g / static_cast<T>(n) : T(0);
    const T mean_gx = sum_gx / static_cast<T>(n);
    for (int64_t i = 0; i < n; ++i) {
      const T xh = (xr[i] - mu) * rs;
      const T g = w ? gr[i] * w[i] : gr[i];
      dx[r * n + i] = rs * (g - mean_g - xh * mean_gx);
    }
  }
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  RILL_DISPATCH_FLOAT(x.dtype(), "layer_norm", T, {
    norm_forward_impl<T>(true, x.data<T>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias),
                         static_cast<T>(eps), y.data<T>(), mean.data<T>(), rstd.data<T>(),
                         x.size(0), x.size(1));
  });
}

void layer_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias) {
  RILL_DISPATCH_FLOAT(x.dtype(), "layer_norm_backward", T, {
    norm_backward_impl<T>(true, x.data<T>(), ptr_or_null<T>(weight), mean.data<T>(), rstd.data<T>(),
                          dy.data<T>(), ptr_or_null<T>(dx), ptr_or_null<T>(dweight),
                          ptr_or_null<T>(dbias), x.size(0), x.size(1));
  });
}

void rms_norm_forward(const Tensor& x, const Tensor& weight, double eps, const Tensor& y,
                      const Tensor& rstd) {
  RILL_DISPATCH_FLOAT(x.dtype(), "rms_norm", T, {
    norm_forward_impl<T>(false, x.data<T>(), ptr_or_null<T>(weight), nullptr, static_cast<T>(eps),
                         y.data<T>(), nullptr, rstd.data<T>(), x.size(0), x.size(1));
  });
}

void rms_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& rstd, const Tensor& dy,
                       const Tensor& dx, const Tensor& dweight) {
  RILL_DISPATCH_FLOAT(x.dtype(), "rms_norm_backward", T, {
    norm_backward_impl<T>(false, x.data<T>(), ptr_or_null<T>(weight), nullptr, rstd.data<T>(),
                          dy.data<T>(), ptr_or_null<T>(dx), ptr_or_null<T>(dweight), nullptr,
                          x.size(0), x.size(1));
  });
}

}  // namespace rill::ref
