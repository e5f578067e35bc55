// Tensor: a cheap handle (shared storage, offset, shape, strides in elements, dtype) plus the
// autograd fields. Views share storage. Differentiable view methods are defined in ops/views.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rill/core/dtype.h"
#include "rill/core/shape.h"
#include "rill/core/storage.h"

namespace rill {

struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  DType dtype = DType::f32;

  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn;     // the op that made this tensor, when recorded
  int output_nr = 0;                 // which output of grad_fn this is
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories (no autograd history; contiguous).
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor scalar(double value, DType dtype = DType::f32);  // rank 0
  static Tensor arange(int64_t n, DType dtype = DType::i64);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // Seeded, counter-based: the same seed gives the same values on any thread count.
  static Tensor randn(const Shape& shape, uint64_t seed, DType dtype = DType::f32);
  static Tensor uniform(const Shape& shape, double lo, double hi, uint64_t seed,
                        DType dtype = DType::f32);
  static Tensor randint(const Shape& shape, int64_t lo, int64_t hi, uint64_t seed,
                        DType dtype = DType::i64);

  bool defined() const { return impl_ != nullptr; }
  DType dtype() const { return impl_->dtype; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t d) const;    // negative d counts from the end
  int64_t stride(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return rill::numel(impl_->shape); }
  int64_t offset() const { return impl_->offset; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  bool is_contiguous() const;
  std::string str() const;  // "Tensor(f32, [2, 3])"

  // Pointer to element 0 (offset applied). data<T>() checks that T matches the dtype.
  void* data_ptr() const;
  template <class T>
  T* data() const;
  template <class T>
  T item() const;  // the single element, converted to T
  template <class T>
  std::vector<T> to_vector() const;  // row-major copy of every element, converted to T

  // Views and copies; all differentiable.
  Tensor view(const Shape& shape) const;     // needs compatible strides; -1 infers one dim
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor expand(const Shape& shape) const;  // broadcast to shape (stride 0)
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;       // always a new contiguous copy
  Tensor to(DType dtype) const;

  // In place, never recorded: for optimisers, state and initialisation.
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // same shape (src may broadcast), converting dtype

  // Autograd.
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool on);  // leaves only
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  Tensor grad() const { return Tensor(impl_->grad); }
  void set_grad(const Tensor& g) { impl_->grad = g.impl_; }
  void zero_grad() { impl_->grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  // Backpropagates from this tensor: a scalar (numel 1) when grad is undefined, else grad has
  // this tensor's shape. Gradients accumulate into the .grad of leaves that require grad.
  void backward(const Tensor& grad = Tensor()) const;
  Tensor detach() const;  // shares storage, no history, requires_grad false

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Makes a tensor that views `base`'s storage with another shape, strides and offset.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

template <class T>
T* Tensor::data() const {
  RILL_CHECK(defined() && dtype() == dtype_of<T>, "[data] tensor is {}, asked for {}",
             defined() ? dtype_name(dtype()) : "undefined", dtype_name(dtype_of<T>));
  return static_cast<T*>(data_ptr());
}

}  // namespace rill
