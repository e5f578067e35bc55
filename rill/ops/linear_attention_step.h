// One token of causal linear attention, updating the state in place (the recurrent form's
// per-token step, no tape): S += k v^T, out = S^T q, per (b, h).
#pragma once
#include "rill/core/tensor.h"

namespace rill {

// q, k [B,H,Dk], v [B,H,Dv], s [B,H,Dk,Dv] contiguous (updated in place). Returns out [B,H,Dv].
// Refuses to run while recording a tape (it mutates s).
Tensor linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s);

}  // namespace rill
