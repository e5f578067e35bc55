// Softmax attention baselines: causal multi-head attention as one fused, memory-efficient op
// (FlashAttention-2 style on the cpu backend: never materialises Tq x Tk, saves only the per-row
// logsumexp), the same function composed from ordinary ops, rotary position embeddings and the
// T5 relative position bias.
//
// Shapes: B batch, H heads, Tq queries, Tk keys (and values), D query/key head dim, Dv value head
// dim. Query i sits at absolute position i + q_offset, key j at position j.
#pragma once
#include <cstdint>

#include "rill/backend/attention_params.h"
#include "rill/core/tensor.h"

namespace rill {

// q [B,H,Tq,D], k [B,H,Tk,D], v [B,H,Tk,Dv]; rel_bias optional [num_buckets, H] (a learned table,
// differentiable): logits_ij = scale * q_i.k_j + rel_bias[t5_bucket(i + q_offset - j), h].
// Returns [B,H,Tq,Dv]. Rows with no visible key give 0. The bucketing is unidirectional when
// causal and bidirectional otherwise. All floating inputs share one dtype (f32 or f64); any
// strides. Memory: O(B*H*(Tq+Tk)*(D+Dv)) in forward and backward, never O(Tq*Tk).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v,
                 const AttentionOptions& opt = {}, const Tensor& rel_bias = Tensor());

// The same function composed from ordinary ops (matmul, masked fill, softmax), materialising the
// Tq x Tk matrix: the baseline for tests and benchmarks.
Tensor attention_naive(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& opt = {}, const Tensor& rel_bias = Tensor());

// Rotary position embedding (Su et al. 2021), GPT-NeoX/LLaMA half-split layout: pairs
// (x[..., i], x[..., i + D/2]) rotated by angle pos * base^(-2i/D), pos = offset + t. x [B,H,T,D],
// D even, f32 or f64, any strides. Differentiable (backward = rotation by -angle).
Tensor rotary(const Tensor& x, int64_t offset, double base = 10000.0);

}  // namespace rill
