// Linear attention numerators (Katharopoulos et al. 2020): the causal form with a carried state,
// as one differentiable op with a recurrent and a chunked kernel, and the non-causal form.
//
// Shapes: B batch, H heads, T tokens, Dk key/query feature size (after the feature map),
// Dv value size (any size: a mixer appends a column of ones to v to get the normaliser).
#pragma once
#include <cstdint>
#include <utility>

#include "rill/core/tensor.h"

namespace rill {

// Which cpu kernel computes the causal numerator. Both compute the same function; the ref
// backend ignores the choice (it is the oracle for both).
//  recurrent: a fused per-token scan; backward by the paper's Algorithm 1, O(T) memory.
//  chunked:   per chunk of `chunk` tokens, out = Q S_start + tril(Q K^T) V and
//             S_next = S_start + K^T V, as small GEMMs; backward keeps T/chunk states.
enum class LinearAttentionForm { recurrent, chunked };

// Causal numerator with an initial state: S_i = S0 + sum_{j<=i} k_j v_j^T, out_i = S_i^T q_i.
// q, k [B,H,T,Dk] (already feature-mapped), v [B,H,T,Dv], s0 [B,H,Dk,Dv] (undefined = zeros).
// Returns {out [B,H,T,Dv], s_final [B,H,Dk,Dv]}. Differentiable w.r.t. q, k, v and s0, with
// gradients arriving at out AND s_final. chunk (> 0) is the chunked form's chunk length; T need
// not be a multiple of it.
std::pair<Tensor, Tensor> causal_linear_attention(
    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
    LinearAttentionForm form = LinearAttentionForm::chunked, int64_t chunk = 64);

// Non-causal: out = q (k^T v) per (b, h), composed from matmul; differentiable through autograd.
// q [B,H,Tq,Dk], k [B,H,T,Dk], v [B,H,T,Dv] -> [B,H,Tq,Dv].
Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v);
// The same with a state added to the keys' sum: out = q (s0 + k^T v); s0 [B,H,Dk,Dv] (undefined
// = zeros).
Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& s0);

}  // namespace rill
