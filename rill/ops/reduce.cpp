// Reduction ops (sum, mean, max, logsumexp, sum_to): validate, dispatch, record the backward.
#include "rill/ops/reduce.h"

#include <algorithm>

#include "rill/backend/cpu/reduce.h"
#include "rill/backend/ref/reduce.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

const char* reduce_name(ReduceOp op) {
  return op == ReduceOp::sum ? "sum" : (op == ReduceOp::max ? "max" : "logsumexp");
}

std::vector<int64_t> normalize_dims(const Tensor& x, const std::vector<int64_t>& dims,
                                    const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(normalize_dim(d, x.dim(), op));
  std::sort(out.begin(), out.end());
  RILL_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(),
             "[{}] repeated dim in {} for a tensor {}", op, shape_str(dims), shape_str(x.shape()));
  return out;
}

Shape keepdim_shape(const Tensor& x, const std::vector<int64_t>& dims) {
  Shape s = x.shape();
  for (int64_t d : dims) s[d] = 1;
  return s;
}

Shape dropped_shape(const Tensor& x, const std::vector<int64_t>& dims) {
  Shape s;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) s.push_back(x.shape()[d]);
  return s;
}

struct ReduceBackward : Node {
  ReduceOp op;
  Tensor x, y;  // y in keepdim shape
  std::vector<int64_t> dims;
  ReduceBackward(ReduceOp op, Tensor x, Tensor y, std::vector<int64_t> dims)
      : op(op), x(std::move(x)), y(std::move(y)), dims(std::move(dims)) {}
  const char* name() const override { return reduce_name(op); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor gk = g[0].reshape(y.shape());  // back to keepdim form, broadcastable to x
    switch (op) {
      case ReduceOp::sum:
        return {gk.expand(x.shape()).contiguous()};
      case ReduceOp::max: {
        Tensor mask = eq(x, y);
        Tensor count = sum(mask, dims, true);
        return {mul(mask, div(gk, count))};
      }
      case ReduceOp::logsumexp:
        return {mul(exp(sub(x, y)), gk)};
    }
    return {Tensor()};
  }
};

Tensor reduce_op(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const char* name = reduce_name(op);
  check_floating(name, x);
  std::vector<int64_t> dims = normalize_dims(x, dims_in, name);
  if (op != ReduceOp::sum)
    for (int64_t d : dims)
      RILL_CHECK(x.shape()[d] > 0, "[{}] cannot reduce the empty dim {} of {}", name, d,
                 shape_str(x.shape()));
  Tensor yk = new_output(keepdim_shape(x, dims), x.dtype());
  RILL_KERNEL(reduce, op, x, dims, yk);
  Tensor y = keepdim ? yk : yk.view(dropped_shape(x, dims));
  if (should_record({&x})) {
    auto node = std::make_shared<ReduceBackward>(op, x.detach(), yk.detach(), dims);
    y = y.detach();  // the returned tensor itself carries the node
    record(node, {&x}, {&y});
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_op(ReduceOp::sum, x, dims, keepdim);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating("mean", x);
  int64_t count = 1;
  for (int64_t d : normalize_dims(x, dims, "mean")) count *= x.shape()[d];
  RILL_CHECK(count > 0, "[mean] mean over zero elements of {}", shape_str(x.shape()));
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(count));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_op(ReduceOp::max, x, dims, keepdim);
}

Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_op(ReduceOp::logsumexp, x, dims, keepdim);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  RILL_CHECK(lead >= 0, "[sum_to] cannot reduce {} to {}", shape_str(x.shape()), shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)) dims.push_back(d);
  Tensor s = dims.empty() ? x : sum(x, dims, true);
  return s.reshape(shape);
}

}  // namespace rill
