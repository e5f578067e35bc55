// Reference scans: one plain loop per line along the scan dim, written for clarity.
#include "rill/backend/ref/scan.h"

#include <cmath>
#include <limits>

#include "rill/backend/ref/strided.h"

namespace rill::ref {

namespace {

// fn(offsets) once per line along `dim`, with each operand's offset of the line's first position.
template <size_t N, class F>
void for_each_line(const Shape& shape, int64_t dim, const std::array<const Tensor*, N>& ts,
                   F&& fn) {
  Shape lines = shape;
  lines[dim] = 1;
  std::array<Tensor, N> views;
  std::array<const Tensor*, N> ptrs;
  for (size_t k = 0; k < N; ++k) {
    views[k] = make_view(*ts[k], lines, ts[k]->strides(), ts[k]->offset());
    ptrs[k] = &views[k];
  }
  for_each_offset<N>(lines, ptrs, fn);
}

template <class T>
void cumsum_impl(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  const T* xp = base_ptr<T>(x);
  T* op = base_ptr<T>(out);
  const int64_t n = x.shape()[dim], xs = x.strides()[dim], os = out.strides()[dim];
  for_each_line<2>(x.shape(), dim, {&x, &out}, [&](auto f) {
    T acc = 0;
    for (int64_t p = 0; p < n; ++p) {
      const int64_t j = reverse ? n - 1 - p : p;
      acc += xp[f[0] + j * xs];
      op[f[1] + j * os] = acc;
    }
  });
}

template <class T>
void logcumsumexp_impl(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  const T* xp = base_ptr<T>(x);
  T* op = base_ptr<T>(out);
  const int64_t n = x.shape()[dim], xs = x.strides()[dim], os = out.strides()[dim];
  for_each_line<2>(x.shape(), dim, {&x, &out}, [&](auto f) {
    // The running sum s is kept relative to the running max m: sum exp(x_i) = exp(m) * s.
    T m = -std::numeric_limits<T>::infinity(), s = 0;
    for (int64_t p = 0; p < n; ++p) {
      const int64_t j = reverse ? n - 1 - p : p;
      const T v = xp[f[0] + j * xs];
      if (v > m) {
        s = s * std::exp(m - v) + T(1);
        m = v;
      } else {
        s += v == m ? T(1) : std::exp(v - m);  // equal infinities would give exp(nan)
      }
      op[f[1] + j * os] = m + std::log(s);
    }
  });
}

template <class T>
void logcumsumexp_backward_impl(const Tensor& x, const Tensor& y, const Tensor& dy, int64_t dim,
                                bool reverse, const Tensor& dx) {
  const T* xp = base_ptr<T>(x);
  const T* yp = base_ptr<T>(y);
  const T* gp = base_ptr<T>(dy);
  T* dp = base_ptr<T>(dx);
  const int64_t n = x.shape()[dim];
  const int64_t xs = x.strides()[dim], ys = y.strides()[dim], gs = dy.strides()[dim],
                ds = dx.strides()[dim];
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for_each_line<4>(x.shape(), dim, {&x, &y, &dy, &dx}, [&](auto f) {
    // Walk from the end of the scan back to its start; y never decreases along the scan, so the
    // factor exp(y_j - y_next) is at most 1.
    T t = 0, y_next = 0;
    for (int64_t p = n - 1; p >= 0; --p) {
      const int64_t j = reverse ? n - 1 - p : p;
      const T yj = yp[f[1] + j * ys];
      const T factor = (p == n - 1 || yj == y_next) ? T(1) : std::exp(yj - y_next);
      t = gp[f[2] + j * gs] + factor * t;
      const T xj = xp[f[0] + j * xs];
      dp[f[3] + j * ds] = xj == neg_inf ? T(0) : std::exp(xj - yj) * t;
      y_next = yj;
    }
  });
}

}  // namespace

void cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  RILL_DISPATCH_ALL(x.dtype(), "cumsum", T, cumsum_impl<T>(x, dim, reverse, out));
}

void logcumsumexp(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  RILL_DISPATCH_FLOAT(x.dtype(), "logcumsumexp", T, logcumsumexp_impl<T>(x, dim, reverse, out));
}

void logcumsumexp_backward(const Tensor& x, const Tensor& y, const Tensor& dy, int64_t dim,
                           bool reverse, const Tensor& dx) {
  RILL_DISPATCH_FLOAT(x.dtype(), "logcumsumexp", T,
                      logcumsumexp_backward_impl<T>(x, y, dy, dim, reverse, dx));
}

}  // namespace rill::ref
