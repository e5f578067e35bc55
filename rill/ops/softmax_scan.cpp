// The softmax scan op: validate, flatten the heads into the batch, dispatch to the ref oracle or
// the cpu kernels, and record one node whose backward runs the fused reverse scans.
#include "rill/ops/softmax_scan.h"

#include "rill/backend/cpu/softmax_scan.h"
#include "rill/backend/ref/softmax_scan.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

constexpr const char* kOp = "softmax_scan";

std::string shapes(const Tensor& s, const Tensor& v, const Tensor& lse0, const Tensor& o0,
                   const Tensor& resets) {
  auto sh = [](const Tensor& t) {
    return t.defined() ? shape_str(t.shape()) : std::string("(none)");
  };
  return fmt::format("scores {} values {} lse0 {} o0 {} resets {}", sh(s), sh(v), sh(lse0), sh(o0),
                     sh(resets));
}

void validate(const Tensor& s, const Tensor& v, const Tensor& lse0, const Tensor& o0,
              const Tensor& resets) {
  check_defined(kOp, s, "scores");
  check_defined(kOp, v, "values");
  const std::string all = shapes(s, v, lse0, o0, resets);
  RILL_CHECK(is_floating(v.dtype()), "[{}] expects f32 or f64, got values {} ({})", kOp,
             dtype_name(v.dtype()), all);
  for (const Tensor* t : {&s, &lse0, &o0})
    RILL_CHECK(!t->defined() || t->dtype() == v.dtype(),
               "[{}] dtypes differ: values {}, got {} ({})", kOp, dtype_name(v.dtype()),
               dtype_name(t->dtype()), all);
  RILL_CHECK(v.dim() == 4 && v.size(2) > 0, "[{}] values must be [B,H,T,Dv] with T >= 1; got {}",
             kOp, all);
  const int64_t b = v.size(0), h = v.size(1), t = v.size(2), d = v.size(3);
  RILL_CHECK(s.shape() == Shape({b, h, t}), "[{}] scores must be [B,H,T] = [{},{},{}]; got {}", kOp,
             b, h, t, all);
  RILL_CHECK(!lse0.defined() || lse0.shape() == Shape({b, h}),
             "[{}] lse0 must be [B,H] = [{},{}]; got {}", kOp, b, h, all);
  RILL_CHECK(!o0.defined() || o0.shape() == Shape({b, h, d}),
             "[{}] o0 must be [B,H,Dv] = [{},{},{}]; got {}", kOp, b, h, d, all);
  RILL_CHECK(!o0.defined() || lse0.defined(),
             "[{}] o0 without lse0 means nothing (a state is both); got {}", kOp, all);
  RILL_CHECK(!resets.defined() || resets.shape() == Shape({b, t}),
             "[{}] resets must be [B,T] = [{},{}]; got {}", kOp, b, t, all);
}

struct SoftmaxScanBackward : Node {
  SoftmaxScanArgs args;  // flat, contiguous, detached
  Tensor out, lse;       // [N,T,Dv], [N,T]: the forward's outputs
  Shape vshape;          // [B,H,T,Dv]
  Backend backend;       // the backward pairs with the kernels that ran the forward
  const char* name() const override { return "softmax_scan"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    BackendGuard guard(backend);
    const DType dt = out.dtype();
    const int64_t b = vshape[0], h = vshape[1], t = vshape[2], d = vshape[3];
    // grads[0] is dL/d out, grads[1] dL/d lse (zeros when the loss does not use it).
    Tensor g_out = grads[0].detach().contiguous().view(out.shape());
    Tensor g_lse = grads[1].detach().contiguous().view(lse.shape());
    SoftmaxScanGrads g{new_output({b * h, t}, dt), new_output({b * h, t, d}, dt),
                       needs_grad(2) ? new_output({b * h}, dt) : Tensor(),
                       needs_grad(3) ? new_output({b * h, d}, dt) : Tensor()};
    RILL_KERNEL(softmax_scan_backward, args, out, lse, g_out, g_lse, g);
    return {needs_grad(0) ? g.ds.view({b, h, t}) : Tensor(),
            needs_grad(1) ? g.dv.view(vshape) : Tensor(),
            g.dlse0.defined() ? g.dlse0.view({b, h}) : Tensor(),
            g.do0.defined() ? g.do0.view({b, h, d}) : Tensor()};
  }
};

}  // namespace

SoftmaxScanResult softmax_scan(const Tensor& scores, const Tensor& values, const Tensor& lse0,
                               const Tensor& o0, const Tensor& resets) {
  validate(scores, values, lse0, o0, resets);
  const int64_t b = values.size(0), h = values.size(1), t = values.size(2), d = values.size(3);
  const int64_t n = b * h;
  SoftmaxScanArgs args{scores.detach().contiguous().view({n, t}),
                       values.detach().contiguous().view({n, t, d}),
                       lse0.defined() ? lse0.detach().contiguous().view({n}) : Tensor(),
                       o0.defined() ? o0.detach().contiguous().view({n, d}) : Tensor(),
                       flat_resets(resets, h, values.dtype())};
  Tensor out = new_output({n, t, d}, values.dtype());
  Tensor lse = new_output({n, t}, values.dtype());
  RILL_KERNEL(softmax_scan, args, out, lse);
  SoftmaxScanResult r{out.view({b, h, t, d}), lse.view({b, h, t})};
  if (should_record({&scores, &values, &lse0, &o0})) {
    auto node = std::make_shared<SoftmaxScanBackward>();
    node->args = args;
    node->out = out;
    node->lse = lse;
    node->vshape = values.shape();
    node->backend = active_backend();
    record(node, {&scores, &values, &lse0, &o0}, {&r.out, &r.lse});
  }
  return r;
}

}  // namespace rill
