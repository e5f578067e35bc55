// The solve op: validate, make contiguous copies, dispatch to the ref elimination or LAPACK,
// turn a zero pivot into an error, and record one node whose backward is two more ops (a solve
// with a^T and a matmul) under the backend that ran the forward.
#include "rill/ops/linalg.h"

#include "rill/backend/cpu/linalg.h"
#include "rill/backend/ref/linalg.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

constexpr const char* kOp = "solve";

void validate(const Tensor& a, const Tensor& b) {
  check_defined(kOp, a, "a");
  check_defined(kOp, b, "b");
  auto all = [&] {
    return fmt::format("a {} {}, b {} {}", dtype_name(a.dtype()), shape_str(a.shape()),
                       dtype_name(b.dtype()), shape_str(b.shape()));
  };
  RILL_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()),
             "[{}] expects f32 or f64 tensors; got {}", kOp, all());
  RILL_CHECK(a.dtype() == b.dtype(), "[{}] a and b must have one dtype; got {}", kOp, all());
  RILL_CHECK(a.dim() == 2 && a.size(0) == a.size(1),
             "[{}] a must be a square matrix [n, n]; got {}", kOp, all());
  RILL_CHECK((b.dim() == 1 || b.dim() == 2) && b.size(0) == a.size(0),
             "[{}] b must be [n] or [n, m] with n = {} (a's size); got {}", kOp, a.size(0), all());
}

struct SolveBackward : Node {
  Tensor a;         // [n, n] contiguous, detached
  Tensor x;         // [n, m] the forward's output, detached
  Backend backend;  // the backward pairs with the kernels that ran the forward
  const char* name() const override { return "solve"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    BackendGuard guard(backend);
    // x = a^{-1} b, so dx = a^{-1} (db - da x) and <gx, dx> = <a^{-T} gx, db - da x>.
    Tensor gb = solve(a.transpose(0, 1), grads[0]);                             // [n, m]
    Tensor ga = needs_grad(0) ? neg(matmul(gb, x.transpose(0, 1))) : Tensor();  // [n, n]
    return {ga, needs_grad(1) ? gb : Tensor()};
  }
};

// b [n, m], validated.
Tensor solve_matrix(const Tensor& a, const Tensor& b) {
  const int64_t n = a.size(0), m = b.size(1);
  Tensor ac = a.detach().contiguous(), bc = b.detach().contiguous();
  Tensor x = new_output({n, m}, a.dtype());
  int64_t zero_pivot = 0;
  RILL_KERNEL(solve, ac, bc, x, zero_pivot);
  RILL_CHECK(
      zero_pivot == 0,
      "[{}] a [{}, {}] is singular to working precision: pivot {} of its LU factorisation is "
      "exactly zero, so a x = b has no unique solution",
      kOp, n, n, zero_pivot);
  if (should_record({&a, &b})) {
    auto node = std::make_shared<SolveBackward>();
    node->a = ac;
    node->x = x.detach();  // detached: x's grad_fn is this node, no cycle
    node->backend = active_backend();
    record(node, {&a, &b}, {&x});
  }
  return x;
}

}  // namespace

Tensor solve(const Tensor& a, const Tensor& b) {
  validate(a, b);
  if (b.dim() == 1) return solve_matrix(a, b.unsqueeze(1)).squeeze(1);
  return solve_matrix(a, b);
}

}  // namespace rill
