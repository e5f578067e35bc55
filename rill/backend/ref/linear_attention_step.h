// Reference kernel for one token of causal linear attention: S += k v^T; out = S^T q.
#pragma once
#include "rill/core/tensor.h"

namespace rill::ref {

// q, k [B,H,Dk], v [B,H,Dv], s [B,H,Dk,Dv] (updated in place), out [B,H,Dv]; all contiguous.
void linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                           const Tensor& out);

}  // namespace rill::ref
