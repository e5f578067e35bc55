#include "rill/ops/linear_attention_step.h"

#include "rill/autograd/grad_mode.h"
#include "rill/backend/cpu/linear_attention_step.h"
#include "rill/backend/ref/linear_attention_step.h"
#include "rill/ops/op_util.h"

namespace rill {

Tensor linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s) {
  const char* op = "linear_attention_step";
  check_floating(op, q);
  check_same_dtype(op, q, k);
  check_same_dtype(op, q, v);
  check_same_dtype(op, q, s);
  RILL_CHECK(q.dim() == 3 && k.shape() == q.shape() && v.dim() == 3 &&
                 v.size(0) == q.size(0) && v.size(1) == q.size(1) && s.dim() == 4 &&
                 s.shape() == Shape({q.size(0), q.size(1), q.size(2), v.size(2)}),
             "[{}] expects q, k [B,H,Dk], v [B,H,Dv], s [B,H,Dk,Dv]; got q {} k {} v {} s {}", op,
             shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()),
             shape_str(s.shape()));
  RILL_CHECK(s.is_contiguous(), "[{}] the state must be contiguous, got strides {}", op,
             shape_str(s.strides()));
  RILL_CHECK(!(GradMode::is_enabled() &&
               (q.requires_grad() || k.requires_grad() || v.requires_grad() || s.requires_grad())),
             "[{}] updates the state in place and cannot be recorded; run it under NoGradGuard",
             op);
  Tensor out = new_output(v.shape(), v.dtype());
  RILL_KERNEL(linear_attention_step, q.contiguous(), k.contiguous(), v.contiguous(), s, out);
  return out;
}

}  // namespace rill
