// The linear scan op: validate, broadcast a to b's shape and flatten to [B,T,D], dispatch to the
// ref oracle or the cpu kernels, and record one node whose backward runs the reverse scan and
// sums da back to a's shape.
#include "rill/ops/linear_scan.h"

#include "rill/backend/cpu/linear_scan.h"
#include "rill/backend/ref/linear_scan.h"
#include "rill/ops/op_util.h"
#include "rill/ops/reduce.h"

namespace rill {

namespace {

constexpr const char* kOp = "linear_scan";

std::string shapes(const Tensor& a, const Tensor& b, const Tensor& h0) {
  auto s = [](const Tensor& t) {
    return t.defined() ? shape_str(t.shape()) : std::string("(none)");
  };
  return fmt::format("a {} b {} h0 {}", s(a), s(b), s(h0));
}

void validate(const Tensor& a, const Tensor& b, const Tensor& h0) {
  check_defined(kOp, a, "a");
  check_defined(kOp, b, "b");
  RILL_CHECK(is_floating(b.dtype()), "[{}] expects f32 or f64, got b {} ({})", kOp,
             dtype_name(b.dtype()), shapes(a, b, h0));
  RILL_CHECK(a.dtype() == b.dtype() && (!h0.defined() || h0.dtype() == b.dtype()),
             "[{}] dtypes differ: a {}, b {}, h0 {} ({})", kOp, dtype_name(a.dtype()),
             dtype_name(b.dtype()), h0.defined() ? dtype_name(h0.dtype()) : "(none)",
             shapes(a, b, h0));
  RILL_CHECK(b.dim() >= 2, "[{}] b must be [B,T,...] (time is dim 1), got {}", kOp,
             shapes(a, b, h0));
  bool ok = a.dim() <= b.dim();
  for (int64_t i = 1; ok && i <= a.dim(); ++i) ok = a.size(-i) == b.size(-i) || a.size(-i) == 1;
  RILL_CHECK(ok, "[{}] a must broadcast to b's shape {}; got {}", kOp, shape_str(b.shape()),
             shapes(a, b, h0));
  if (h0.defined()) {
    Shape want = b.shape();
    want.erase(want.begin() + 1);
    RILL_CHECK(h0.shape() == want, "[{}] h0 must be b's shape without time, {}; got {}", kOp,
               shape_str(want), shapes(a, b, h0));
  }
}

struct LinearScanBackward : Node {
  LinearScanArgs args;  // [B,T,D] a (broadcast), b; h0 [B,D]
  Tensor h;             // [B,T,D] the forward's output
  Shape ashape, bshape, h0shape;
  Backend backend;  // the backward pairs with the kernels that ran the forward
  const char* name() const override { return "linear_scan"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    BackendGuard guard(backend);
    const DType dt = args.b.dtype();
    Tensor g = grads[0].detach().contiguous().view(h.shape());
    Tensor da = new_output(h.shape(), dt), db = new_output(h.shape(), dt);
    Tensor dh0 = needs_grad(2) ? new_output({h.size(0), h.size(2)}, dt) : Tensor();
    RILL_KERNEL(linear_scan_backward, args, h, g, LinearScanGrads{da, db, dh0});
    return {needs_grad(0) ? sum_to(da.view(bshape), ashape) : Tensor(),
            needs_grad(1) ? db.view(bshape) : Tensor(),
            dh0.defined() ? dh0.view(h0shape) : Tensor()};
  }
};

}  // namespace

Tensor linear_scan(const Tensor& a, const Tensor& b, const Tensor& h0) {
  validate(a, b, h0);
  const int64_t bn = b.size(0), len = b.size(1);
  int64_t d = 1;  // the state's lanes
  for (int64_t i = 2; i < b.dim(); ++i) d *= b.size(i);
  LinearScanArgs args{expand_view(a.detach(), b.shape(), kOp).contiguous().view({bn, len, d}),
                      b.detach().contiguous().view({bn, len, d}),
                      h0.defined() ? h0.detach().contiguous().view({bn, d}) : Tensor()};
  Tensor h = new_output({bn, len, d}, b.dtype());
  RILL_KERNEL(linear_scan, args, h);
  Tensor out = h.view(b.shape());
  if (should_record({&a, &b, &h0})) {
    auto node = std::make_shared<LinearScanBackward>();
    node->args = args;
    node->h = h;
    node->ashape = a.shape(), node->bshape = b.shape();
    if (h0.defined()) node->h0shape = h0.shape();
    node->backend = active_backend();
    record(node, {&a, &b, &h0}, {&out});
  }
  return out;
}

}  // namespace rill
