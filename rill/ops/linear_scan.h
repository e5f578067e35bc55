// The first-order linear scan of DESIGN.md ("shared recurrences"):
//   h_t = a_t ⊙ h_{t-1} + b_t   along time, h_{-1} = h0,
// used by AReLiT's components. A reset is a_t = 0. (Aaren's running output, the same
// recurrence with beta_t = exp(lse_{t-1} - lse_t), runs fused inside ops/softmax_scan.h.)
//
// Shapes: B batch, T time (dim 1), S... the state's own shape (any number of dims, flattened to
// D lanes inside).
#pragma once
#include "rill/core/tensor.h"

namespace rill {

// b [B,T,S...]; a broadcasts to b (e.g. a [B,T,1,d] against b [B,T,r,d]: one decay shared by r
// rows); h0 [B,S...] or undefined (zeros). Returns h [B,T,S...], every h_t; h.select(1, T-1) is
// the final state. Differentiable w.r.t. a (the gradient summed over its broadcast dims), b and
// h0. The backward is itself a reverse linear scan: lambda_t = dL/dh_t (total) =
// g_t + a_{t+1} lambda_{t+1}, db_t = lambda_t, da_t = lambda_t ⊙ h_{t-1}, dh0 = a_0 ⊙ lambda_0.
Tensor linear_scan(const Tensor& a, const Tensor& b, const Tensor& h0 = Tensor());

}  // namespace rill
