// Elementwise ops: validate, broadcast, dispatch, record. Unary backward is a fused kernel
// (dy * f'(x)); binary backward is written with other ops and reduced to each input's shape.
#include "rill/ops/elementwise.h"

#include "rill/backend/cpu/elementwise.h"
#include "rill/backend/ref/elementwise.h"
#include "rill/ops/op_util.h"
#include "rill/ops/reduce.h"

namespace rill {

namespace {

struct UnaryBackward : Node {
  UnaryOp op;
  UnaryParams p;
  Tensor x, y;
  UnaryBackward(UnaryOp op, UnaryParams p, Tensor x, Tensor y)
      : op(op), p(p), x(std::move(x)), y(std::move(y)) {}
  const char* name() const override { return unary_name(op); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dx = new_output(x.shape(), x.dtype());
    RILL_KERNEL(unary_backward, op, p, x, y, g[0], dx);
    return {dx};
  }
};

Tensor unary_op(UnaryOp op, const Tensor& x, UnaryParams p = {}) {
  check_floating(unary_name(op), x);
  Tensor y = new_output(x.shape(), x.dtype());
  RILL_KERNEL(unary, op, p, x, y);
  if (should_record({&x}))
    record(std::make_shared<UnaryBackward>(op, p, x.detach(), y.detach()), {&x}, {&y});
  return y;
}

struct BinaryBackward : Node {
  BinaryOp op;
  Tensor a, b;  // saved only where the derivative needs them
  Shape a_shape, b_shape;
  BinaryBackward(BinaryOp op, Tensor a, Tensor b, Shape as, Shape bs)
      : op(op), a(std::move(a)), b(std::move(b)), a_shape(std::move(as)), b_shape(std::move(bs)) {}
  const char* name() const override { return binary_name(op); }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    const Tensor& dy = g[0];
    Tensor da, db;
    switch (op) {
      case BinaryOp::add:
        if (needs_grad(0)) da = sum_to(dy, a_shape);
        if (needs_grad(1)) db = sum_to(dy, b_shape);
        break;
      case BinaryOp::sub:
        if (needs_grad(0)) da = sum_to(dy, a_shape);
        if (needs_grad(1)) db = sum_to(neg(dy), b_shape);
        break;
      case BinaryOp::mul:
        if (needs_grad(0)) da = sum_to(mul(dy, b), a_shape);
        if (needs_grad(1)) db = sum_to(mul(dy, a), b_shape);
        break;
      case BinaryOp::div:
        if (needs_grad(0)) da = sum_to(div(dy, b), a_shape);
        if (needs_grad(1)) db = sum_to(neg(div(mul(dy, a), mul(b, b))), b_shape);
        break;
      default:
        fail("[{}] has no gradient", binary_name(op));
    }
    return {da, db};
  }
};

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_same_dtype(name, a, b);
  RILL_CHECK(op != BinaryOp::div || is_floating(a.dtype()),
             "[div] integer division is not supported ({} {} / {} {})", dtype_name(a.dtype()),
             shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = new_output(shape, a.dtype());
  RILL_KERNEL(binary, op, expand_view(a, shape, name), expand_view(b, shape, name), out);
  const bool differentiable =
      op == BinaryOp::add || op == BinaryOp::sub || op == BinaryOp::mul || op == BinaryOp::div;
  if (differentiable && should_record({&a, &b})) {
    const bool keep = op == BinaryOp::mul || op == BinaryOp::div;
    record(std::make_shared<BinaryBackward>(op, keep ? a.detach() : Tensor(),
                                            keep ? b.detach() : Tensor(), a.shape(), b.shape()),
           {&a, &b}, {&out});
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::div, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::eq, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::lt, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::gt, a, b); }

Tensor add(const Tensor& x, double s) { return unary_op(UnaryOp::add_scalar, x, {s, 0}); }
Tensor mul(const Tensor& x, double s) { return unary_op(UnaryOp::mul_scalar, x, {s, 0}); }
Tensor neg(const Tensor& x) { return unary_op(UnaryOp::neg, x); }
Tensor pow(const Tensor& x, double e) { return unary_op(UnaryOp::pow, x, {e, 0}); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op(UnaryOp::rsqrt, x); }
Tensor abs(const Tensor& x) { return unary_op(UnaryOp::abs, x); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::sigmoid, x); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::relu, x); }
Tensor gelu(const Tensor& x, GeluApprox approx) {
  return unary_op(approx == GeluApprox::tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, x);
}
Tensor silu(const Tensor& x) { return unary_op(UnaryOp::silu, x); }
Tensor elu(const Tensor& x, double alpha) { return unary_op(UnaryOp::elu, x, {alpha, 0}); }
Tensor softplus(const Tensor& x, double beta, double threshold) {
  RILL_CHECK(beta > 0, "[softplus] beta must be positive, got {}", beta);
  return unary_op(UnaryOp::softplus, x, {beta, threshold});
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  RILL_CHECK(lo <= hi, "[clamp] lo {} is above hi {}", lo, hi);
  return unary_op(UnaryOp::clamp, x, {lo, hi});
}

namespace {

struct WhereBackward : Node {
  Tensor cond;
  Shape a_shape, b_shape;
  WhereBackward(Tensor c, Shape as, Shape bs)
      : cond(std::move(c)), a_shape(std::move(as)), b_shape(std::move(bs)) {}
  const char* name() const override { return "where"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor zero = Tensor::zeros({}, g[0].dtype());
    Tensor da, db;
    if (needs_grad(1)) da = sum_to(where(cond, g[0], zero), a_shape);
    if (needs_grad(2)) db = sum_to(where(cond, zero, g[0]), b_shape);
    return {Tensor(), da, db};
  }
};

}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "cond");
  check_same_dtype("where", a, b);
  Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = new_output(shape, a.dtype());
  RILL_KERNEL(where, expand_view(cond, shape, "where"), expand_view(a, shape, "where"),
              expand_view(b, shape, "where"), out);
  if (should_record({&a, &b})) {
    Tensor c = cond.detach();
    record(std::make_shared<WhereBackward>(c, a.shape(), b.shape()), {&c, &a, &b}, {&out});
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x);
  Shape shape = broadcast_shapes(mask.shape(), x.shape(), "masked_fill");
  RILL_CHECK(shape == x.shape(), "[masked_fill] mask {} does not broadcast to x {}",
             shape_str(mask.shape()), shape_str(x.shape()));
  return where(mask, Tensor::full({}, value, x.dtype()), x);
}

}  // namespace rill
