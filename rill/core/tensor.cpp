// Tensor basics: factories, accessors and the in-place helpers. Views live in ops/views.cpp.
#include "rill/core/tensor.h"

#include "rill/autograd/node.h"
#include "rill/backend/cpu/copy.h"
#include "rill/core/rng.h"
#include "rill/ops/op_util.h"

namespace rill {

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t s : shape) RILL_CHECK(s >= 0, "[empty] negative size in shape {}", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(rill::numel(shape) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  cpu::fill(t, value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  RILL_DISPATCH_ALL(dtype, "arange", T, {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(i);
  });
  return t;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  RILL_CHECK(static_cast<int64_t>(values.size()) == rill::numel(shape),
             "[from_vector] {} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int64_t>&, const Shape&);

Tensor Tensor::randn(const Shape& shape, uint64_t seed, DType dtype) {
  Tensor t = empty(shape, dtype);
  RILL_DISPATCH_FLOAT(dtype, "randn", T, {
    T* p = t.data<T>();
    const int64_t n = t.numel();
    // clang-format off
_Pragma("omp parallel for schedule(static) if (n > 65536)")
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(normal_at(seed, i));
    // clang-format on
  });
  return t;
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, uint64_t seed, DType dtype) {
  Tensor t = empty(shape, dtype);
  RILL_DISPATCH_FLOAT(dtype, "uniform", T, {
    T* p = t.data<T>();
    const int64_t n = t.numel();
    // clang-format off
_Pragma("omp parallel for schedule(static) if (n > 65536)")
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(lo + (hi - lo) * uniform_at(seed, i));
    // clang-format on
  });
  return t;
}

Tensor Tensor::randint(const Shape& shape, int64_t lo, int64_t hi, uint64_t seed, DType dtype) {
  RILL_CHECK(hi > lo, "[randint] empty range [{}, {})", lo, hi);
  Tensor t = empty(shape, dtype);
  RILL_DISPATCH_INDEX(dtype, "randint", T, {
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      auto r = philox4x32(seed, i);
      uint64_t x = (static_cast<uint64_t>(r[0]) << 32) | r[1];
      p[i] = static_cast<T>(lo + static_cast<int64_t>(x % static_cast<uint64_t>(hi - lo)));
    }
  });
  return t;
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[normalize_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // nothing to lay out
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return fmt::format("Tensor({}, {})", dtype_name(dtype()), shape_str(shape()));
}

void* Tensor::data_ptr() const {
  RILL_CHECK(defined(), "[data] undefined tensor");
  return static_cast<char*>(impl_->storage->data) + impl_->offset * dtype_size(dtype());
}

template <class T>
T Tensor::item() const {
  RILL_CHECK(defined() && numel() == 1, "[item] needs exactly one element, got {}",
             defined() ? shape_str(shape()) : "undefined");
  T out{};
  RILL_DISPATCH_ALL(dtype(), "item", S, { out = static_cast<T>(*static_cast<S*>(data_ptr())); });
  return out;
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int32_t Tensor::item<int32_t>() const;
template int64_t Tensor::item<int64_t>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = Tensor::empty(shape(), dtype_of<T>);
  cpu::copy(*this, c);
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

Tensor& Tensor::fill_(double value) {
  cpu::fill(*this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  RILL_CHECK(defined() && src.defined(), "[copy_] undefined tensor");
  Shape b = broadcast_shapes(src.shape(), shape(), "copy_");
  RILL_CHECK(b == shape(), "[copy_] source {} does not broadcast to destination {}",
             shape_str(src.shape()), shape_str(shape()));
  cpu::copy(expand_view(src, shape(), "copy_"), *this);
  return *this;
}

Tensor& Tensor::set_requires_grad(bool on) {
  RILL_CHECK(is_leaf(), "[set_requires_grad] only leaves can change requires_grad; use detach()");
  impl_->requires_grad = on;
  return *this;
}

void Tensor::backward(const Tensor& grad) const { run_backward(*this, grad); }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

}  // namespace rill
