// Reference softmax-family kernels: plain scalar loops over rows, written for clarity. The
// maximum is subtracted before exp so that large logits stay finite.
#include "rill/backend/ref/softmax.h"

#include <cmath>
#include <limits>

namespace rill::ref {

namespace {

template <class T>
T row_max(const T* x, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

template <class T>
void softmax_forward_impl(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const T m = row_max(xr, n);
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(xr[i] - m);
    for (int64_t i = 0; i < n; ++i)
      yr[i] = log ? (xr[i] - m) - std::log(s) : std::exp(xr[i] - m) / s;
  }
}

template <class T>
void softmax_backward_impl(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * n;
    const T* gr = dy + r * n;
    T* dr = dx + r * n;
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += log ? gr[i] : gr[i] * yr[i];
    for (int64_t i = 0; i < n; ++i) dr[i] = log ? gr[i] - std::exp(yr[i]) * s : yr[i] * (gr[i] - s);
  }
}

template <class T, class I>
void ce_forward_impl(const T* x, const I* t, int64_t rows, int64_t n, int64_t ignore, int64_t count,
                     T* mx, T* ls, T* loss) {
  T total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    mx[r] = row_max(xr, n);
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(xr[i] - mx[r]);
    ls[r] = std::log(s);
    // (max - x[t]) + logsum, not logsumexp - x[t]: no rounding at the logits' magnitude.
    if (t[r] != ignore) total += (mx[r] - xr[t[r]]) + ls[r];
  }
  *loss = count > 0 ? total / static_cast<T>(count) : T(0);
}

template <class T, class I>
void ce_backward_impl(const T* x, const I* t, const T* mx, const T* ls, T scale, int64_t rows,
                      int64_t n, int64_t ignore, T* dx) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* dr = dx + r * n;
    const bool ignored = t[r] == ignore;
    for (int64_t i = 0; i < n; ++i) {
      if (ignored) {
        dr[i] = 0;
      } else {
        const T p = std::exp((xr[i] - mx[r]) - ls[r]);
        dr[i] = scale * (p - (i == t[r] ? T(1) : T(0)));
      }
    }
  }
}

}  // namespace

void softmax_forward(const Tensor& x, const Tensor& y, bool log) {
  RILL_DISPATCH_FLOAT(x.dtype(), "softmax", T, {
    softmax_forward_impl<T>(x.data<T>(), y.data<T>(), x.size(0), x.size(1), log);
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) {
  RILL_DISPATCH_FLOAT(y.dtype(), "softmax_backward", T, {
    softmax_backward_impl<T>(y.data<T>(), dy.data<T>(), dx.data<T>(), y.size(0), y.size(1), log);
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                           int64_t count, const Tensor& row_max, const Tensor& row_logsum,
                           const Tensor& loss) {
  RILL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", T, {
    RILL_DISPATCH_INDEX(target.dtype(), "cross_entropy", I, {
      ce_forward_impl<T, I>(logits.data<T>(), target.data<I>(), logits.size(0), logits.size(1),
                            ignore_index, count, row_max.data<T>(), row_logsum.data<T>(),
                            loss.data<T>());
    });
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& row_max,
                            const Tensor& row_logsum, const Tensor& dloss, int64_t ignore_index,
                            int64_t count, const Tensor& dlogits) {
  RILL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", T, {
    const T scale = count > 0 ? dloss.item<T>() / static_cast<T>(count) : T(0);
    RILL_DISPATCH_INDEX(target.dtype(), "cross_entropy_backward", I, {
      ce_backward_impl<T, I>(logits.data<T>(), target.data<I>(), row_max.data<T>(),
                             row_logsum.data<T>(), scale, logits.size(0), logits.size(1),
                             ignore_index, dlogits.data<T>());
    });
  });
}

}  // namespace rill::ref
