// The causal depthwise convolution op: validate, dispatch to the ref or cpu kernel, and record
// one node whose backward runs the matching backward kernel.
#include "rill/ops/causal_conv.h"

#include "rill/backend/cpu/causal_conv.h"
#include "rill/backend/ref/causal_conv.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

constexpr const char* kOp = "causal_conv1d";

struct CausalConvBackward : Node {
  Tensor x, w, prev;  // contiguous, detached; prev may be undefined
  Backend backend;
  const char* name() const override { return kOp; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    BackendGuard guard(backend);
    Tensor dy = g[0].contiguous();
    Tensor dx = new_output(x.shape(), x.dtype()), dw = new_output(w.shape(), w.dtype());
    Tensor dprev = prev.defined() && needs_grad(2) ? new_output(prev.shape(), x.dtype()) : Tensor();
    RILL_KERNEL(causal_conv1d_backward, x, w, prev, dy, dx, dw, dprev);
    return {dx, dw, dprev};
  }
};

}  // namespace

Tensor causal_conv1d(const Tensor& x, const Tensor& w, const Tensor& prev) {
  check_floating(kOp, x);
  check_same_dtype(kOp, x, w);
  RILL_CHECK(x.dim() == 3 && w.dim() == 2 && w.size(1) == x.size(2) && w.size(0) >= 1,
             "[causal_conv1d] expects x [B,T,D] and w [W,D] with W >= 1; got x {} w {}",
             shape_str(x.shape()), shape_str(w.shape()));
  if (prev.defined()) {
    check_same_dtype(kOp, x, prev);
    const Shape want = {x.size(0), w.size(0) - 1, x.size(2)};
    RILL_CHECK(prev.shape() == want, "[causal_conv1d] prev must be [B,W-1,D] = {}; got {}",
               shape_str(want), shape_str(prev.shape()));
  }
  Tensor xc = x.contiguous(), wc = w.contiguous();
  Tensor pc = prev.defined() && prev.size(1) > 0 ? prev.contiguous() : Tensor();
  Tensor y = new_output(x.shape(), x.dtype());
  RILL_KERNEL(causal_conv1d_forward, xc, wc, pc, y);
  if (should_record({&x, &w, &prev})) {
    auto node = std::make_shared<CausalConvBackward>();
    node->x = xc.detach(), node->w = wc.detach();
    if (pc.defined()) node->prev = pc.detach();
    node->backend = active_backend();
    Tensor p = pc.defined() ? prev : Tensor();
    record(node, {&x, &w, &p}, {&y});
  }
  return y;
}

}  // namespace rill
