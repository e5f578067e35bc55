// The differentiable view and copy methods of Tensor: reshape, permute, slice, expand, ...
// Views share storage; each records a node whose backward maps the gradient back.
#include <algorithm>
#include <numeric>

#include "rill/backend/cpu/copy.h"
#include "rill/backend/ref/copy.h"
#include "rill/ops/op_util.h"
#include "rill/ops/reduce.h"

namespace rill {

namespace {

// Backward of every view that only rearranges elements by shape: reshape the gradient back.
struct ReshapeBackward : Node {
  Shape in_shape;
  explicit ReshapeBackward(Shape s) : in_shape(std::move(s)) {}
  const char* name() const override { return "reshape"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {g[0].reshape(in_shape)};
  }
};

struct PermuteBackward : Node {
  std::vector<int64_t> inverse;
  explicit PermuteBackward(std::vector<int64_t> inv) : inverse(std::move(inv)) {}
  const char* name() const override { return "permute"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {g[0].permute(inverse)};
  }
};

struct SliceBackward : Node {
  Shape in_shape;
  int64_t dim, start, end, step;
  SliceBackward(Shape s, int64_t d, int64_t a, int64_t b, int64_t st)
      : in_shape(std::move(s)), dim(d), start(a), end(b), step(st) {}
  const char* name() const override { return "slice"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dx = Tensor::zeros(in_shape, g[0].dtype());
    dx.slice(dim, start, end, step).copy_(g[0]);
    return {dx};
  }
};

struct ExpandBackward : Node {
  Shape in_shape;
  explicit ExpandBackward(Shape s) : in_shape(std::move(s)) {}
  const char* name() const override { return "expand"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {sum_to(g[0], in_shape)};
  }
};

struct CopyBackward : Node {
  DType in_dtype;
  explicit CopyBackward(DType d) : in_dtype(d) {}
  const char* name() const override { return "copy"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    return {g[0].dtype() == in_dtype ? g[0] : g[0].to(in_dtype)};
  }
};

// Records `node` for a view `out` of `in` when needed.
Tensor finish(const Tensor& in, Tensor out, const std::shared_ptr<Node>& node) {
  if (should_record({&in})) record(node, {&in}, {&out});
  return out;
}

Tensor copy_to_new(const Tensor& x, DType dtype) {
  Tensor out = new_output(x.shape(), dtype);
  RILL_KERNEL(copy, x, out);
  if (should_record({&x})) {
    RILL_CHECK(is_floating(dtype), "[to] cannot differentiate through a cast to {}",
               dtype_name(dtype));
    record(std::make_shared<CopyBackward>(x.dtype()), {&x}, {&out});
  }
  return out;
}

Shape infer_shape(const Shape& shape, int64_t n, const char* op, const Shape& from) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      RILL_CHECK(infer < 0, "[{}] more than one -1 in {}", op, shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      RILL_CHECK(out[i] >= 0, "[{}] negative size in {}", op, shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    RILL_CHECK(known > 0 && n % known == 0, "[{}] cannot view {} as {}", op, shape_str(from),
               shape_str(shape));
    out[infer] = n / known;
  }
  RILL_CHECK(numel(out) == n, "[{}] cannot view {} ({} elements) as {}", op, shape_str(from), n,
             shape_str(shape));
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& shape_in) const {
  Shape s = infer_shape(shape_in, numel(), "view", shape());
  RILL_CHECK(is_contiguous(), "[view] tensor {} with strides {} is not contiguous; use reshape",
             shape_str(shape()), shape_str(strides()));
  return finish(*this, make_view(*this, s, contiguous_strides(s), offset()),
                std::make_shared<ReshapeBackward>(shape()));
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  Shape s = infer_shape(shape_in, numel(), "reshape", shape());
  if (s == shape()) return *this;
  return is_contiguous() ? view(s) : contiguous().view(s);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  int64_t a = normalize_dim(start, dim(), "flatten"), b = normalize_dim(end, dim(), "flatten");
  RILL_CHECK(a <= b, "[flatten] start {} is after end {}", start, end);
  Shape s(shape().begin(), shape().begin() + a);
  int64_t n = 1;
  for (int64_t d = a; d <= b; ++d) n *= shape()[d];
  s.push_back(n);
  s.insert(s.end(), shape().begin() + b + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  RILL_CHECK(static_cast<int64_t>(dims.size()) == dim(), "[permute] {} dims given for a tensor {}",
             dims.size(), shape_str(shape()));
  Shape s(dim()), st(dim());
  std::vector<int64_t> inverse(dim(), -1);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t d = normalize_dim(dims[i], dim(), "permute");
    RILL_CHECK(inverse[d] < 0, "[permute] dim {} repeated in {}", d, shape_str(dims));
    inverse[d] = i;
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  return finish(*this, make_view(*this, s, st, offset()),
                std::make_shared<PermuteBackward>(inverse));
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_dim(a, dim(), "transpose")], dims[normalize_dim(b, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d_in, int64_t start, int64_t end, int64_t step) const {
  int64_t d = normalize_dim(d_in, dim(), "slice");
  const int64_t n = shape()[d];
  RILL_CHECK(step > 0, "[slice] step must be positive, got {}", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] = strides()[d] * step;
  return finish(*this, make_view(*this, s, st, offset() + start * strides()[d]),
                std::make_shared<SliceBackward>(shape(), d, start, end, step));
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  int64_t dd = normalize_dim(d, dim(), "narrow");
  RILL_CHECK(start >= 0 && length >= 0 && start + length <= shape()[dd],
             "[narrow] range [{}, {}) is outside dim {} of size {} in {}", start, start + length,
             dd, shape()[dd], shape_str(shape()));
  return slice(dd, start, start + length);
}

Tensor Tensor::select(int64_t d_in, int64_t index) const {
  int64_t d = normalize_dim(d_in, dim(), "select");
  const int64_t n = shape()[d];
  RILL_CHECK(index >= -n && index < n, "[select] index {} is out of range for dim {} of {}", index,
             d, shape_str(shape()));
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& target) const {
  Tensor v = expand_view(*this, target, "expand");
  return finish(*this, v, std::make_shared<ExpandBackward>(shape()));
}

Tensor Tensor::unsqueeze(int64_t d_in) const {
  int64_t d = normalize_dim(d_in, dim() + 1, "unsqueeze");
  Shape s = shape(), st = strides();
  st.insert(st.begin() + d, d < dim() ? strides()[d] * shape()[d] : 1);
  s.insert(s.begin() + d, 1);
  return finish(*this, make_view(*this, s, st, offset()),
                std::make_shared<ReshapeBackward>(shape()));
}

Tensor Tensor::squeeze(int64_t d_in) const {
  int64_t d = normalize_dim(d_in, dim(), "squeeze");
  RILL_CHECK(shape()[d] == 1, "[squeeze] dim {} of {} has size {}, not 1", d, shape_str(shape()),
             shape()[d]);
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return finish(*this, make_view(*this, s, st, offset()),
                std::make_shared<ReshapeBackward>(shape()));
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous", *this);
  return is_contiguous() ? *this : copy_to_new(*this, dtype());
}

Tensor Tensor::clone() const {
  check_defined("clone", *this);
  return copy_to_new(*this, dtype());
}

Tensor Tensor::to(DType d) const {
  check_defined("to", *this);
  return d == dtype() ? *this : copy_to_new(*this, d);
}

}  // namespace rill
