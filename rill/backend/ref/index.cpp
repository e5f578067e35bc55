// Reference concatenation and indexing. A stride-0 view along the indexed dim turns every
// indexed access into "offset of the other dims + index * stride", walked in row-major order.
#include "rill/backend/ref/index.h"

#include "rill/backend/ref/strided.h"

namespace rill::ref {

namespace {

// t viewed with `shape`, its own strides, and stride 0 along dim (the index supplies that part).
Tensor without_dim(const Tensor& t, const Shape& shape, int64_t dim) {
  Shape st = t.strides();
  st[dim] = 0;
  return make_view(t, shape, st, t.offset());
}

template <class T>
void zero(const Tensor& t) {
  T* p = base_ptr<T>(t);
  for_each_offset<1>(t.shape(), {&t}, [&](auto f) { p[f[0]] = T(0); });
}

template <class T>
void concat_impl(const std::vector<Tensor>& xs, int64_t dim, const Tensor& out) {
  T* op = base_ptr<T>(out);
  int64_t start = 0;
  for (const Tensor& x : xs) {
    Tensor part =
        make_view(out, x.shape(), out.strides(), out.offset() + start * out.strides()[dim]);
    const T* xp = base_ptr<T>(x);
    for_each_offset<2>(x.shape(), {&x, &part}, [&](auto f) { op[f[1]] = xp[f[0]]; });
    start += x.shape()[dim];
  }
}

template <class T, class I>
void index_select_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  Shape is(out.dim(), 0);
  is[dim] = index.strides()[0];
  Tensor iv = make_view(index, out.shape(), is, index.offset());  // index[k] at every position
  Tensor xv = without_dim(x, out.shape(), dim);
  const T* xp = base_ptr<T>(x);
  const I* ip = base_ptr<I>(index);
  T* op = base_ptr<T>(out);
  const int64_t xs = x.strides()[dim];
  for_each_offset<3>(out.shape(), {&iv, &xv, &out},
                     [&](auto f) { op[f[2]] = xp[f[1] + static_cast<int64_t>(ip[f[0]]) * xs]; });
}

template <class T, class I>
void index_select_backward_impl(const Tensor& dy, int64_t dim, const Tensor& index,
                                const Tensor& dx) {
  zero<T>(dx);
  Shape is(dy.dim(), 0);
  is[dim] = index.strides()[0];
  Tensor iv = make_view(index, dy.shape(), is, index.offset());
  Tensor dv = without_dim(dx, dy.shape(), dim);
  const T* gp = base_ptr<T>(dy);
  const I* ip = base_ptr<I>(index);
  T* dp = base_ptr<T>(dx);
  const int64_t ds = dx.strides()[dim];
  for_each_offset<3>(dy.shape(), {&iv, &dy, &dv},
                     [&](auto f) { dp[f[2] + static_cast<int64_t>(ip[f[0]]) * ds] += gp[f[1]]; });
}

template <class T, class I>
void gather_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  Tensor xv = without_dim(x, index.shape(), dim);
  const T* xp = base_ptr<T>(x);
  const I* ip = base_ptr<I>(index);
  T* op = base_ptr<T>(out);
  const int64_t xs = x.strides()[dim];
  for_each_offset<3>(index.shape(), {&index, &xv, &out},
                     [&](auto f) { op[f[2]] = xp[f[1] + static_cast<int64_t>(ip[f[0]]) * xs]; });
}

template <class T, class I>
void gather_backward_impl(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx) {
  zero<T>(dx);
  Tensor dv = without_dim(dx, index.shape(), dim);
  const T* gp = base_ptr<T>(dy);
  const I* ip = base_ptr<I>(index);
  T* dp = base_ptr<T>(dx);
  const int64_t ds = dx.strides()[dim];
  for_each_offset<3>(index.shape(), {&index, &dy, &dv},
                     [&](auto f) { dp[f[2] + static_cast<int64_t>(ip[f[0]]) * ds] += gp[f[1]]; });
}

}  // namespace

void concat(const std::vector<Tensor>& xs, int64_t dim, const Tensor& out) {
  RILL_DISPATCH_ALL(out.dtype(), "concat", T, concat_impl<T>(xs, dim, out));
}

void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  RILL_DISPATCH_ALL(x.dtype(), "index_select", T,
                    RILL_DISPATCH_INDEX(index.dtype(), "index_select", I,
                                        index_select_impl<T, I>(x, dim, index, out)));
}

void index_select_backward(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx) {
  RILL_DISPATCH_FLOAT(dy.dtype(), "index_select", T,
                      RILL_DISPATCH_INDEX(index.dtype(), "index_select", I,
                                          index_select_backward_impl<T, I>(dy, dim, index, dx)));
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  RILL_DISPATCH_ALL(
      x.dtype(), "gather", T,
      RILL_DISPATCH_INDEX(index.dtype(), "gather", I, gather_impl<T, I>(x, dim, index, out)));
}

void gather_backward(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx) {
  RILL_DISPATCH_FLOAT(dy.dtype(), "gather", T,
                      RILL_DISPATCH_INDEX(index.dtype(), "gather", I,
                                          gather_backward_impl<T, I>(dy, dim, index, dx)));
}

}  // namespace rill::ref
