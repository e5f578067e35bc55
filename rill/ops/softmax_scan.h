// The softmax scan: causal softmax attention of one fixed query per head, as Aaren computes it
// (Feng et al. 2024, "Attention as an RNN"). Given scores s_t (the fixed query against key t)
// and values v_t, every step's output is the softmax-weighted average of the values so far,
//   out_t = sum_{i<=t} exp(s_i - lse_t) v_i,    lse_t = log sum_{i<=t} exp(s_i),
// computed as a parallel prefix scan (cpu: chunked, backend/cpu/softmax_scan.h) with a fused
// O(T)-memory backward. (lse_t, out_t) is the recurrent state, d_h + 1 numbers per head: a state
// carried in (lse0, o0) continues a sequence exactly, and the step form is this op with T = 1.
//
// Shapes: B batch, H heads, T steps, Dv value size.
#pragma once
#include "rill/core/tensor.h"

namespace rill {

struct SoftmaxScanResult {
  Tensor out;  // [B,H,T,Dv] every step's output
  Tensor lse;  // [B,H,T] every step's log total weight; (lse[..,T-1], out[..,T-1,:]) is the
               // final state
};

// scores [B,H,T] (finite), values [B,H,T,Dv]; lse0 [B,H] and o0 [B,H,Dv], the state before step
// 0, or undefined for a fresh one (lse0 = -inf: nothing seen, the scan's identity; o0 is then
// ignored); resets [B,T] (any dtype, undefined = none): nonzero at (b, t) starts stream b afresh
// before step t. Differentiable w.r.t. scores, values, lse0 and o0, through both outputs.
SoftmaxScanResult softmax_scan(const Tensor& scores, const Tensor& values,
                               const Tensor& lse0 = Tensor(), const Tensor& o0 = Tensor(),
                               const Tensor& resets = Tensor());

}  // namespace rill
