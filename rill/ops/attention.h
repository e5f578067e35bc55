// Softmax attention baselines: causal multi-head attention as one fused, memory-efficient op
// (FlashAttention-2 style on the cpu backend: never materialises Tq x Tk, saves only the per-row
// logsumexp), the same function composed from ordinary ops, rotary position embeddings and the
// T5 relative position bias.
//
// Shapes: B batch, H heads, Tq queries, Tk keys (and values), D query/key head dim, Dv value head
// dim. Query i sits at absolute position i + q_offset, key j at position j.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill {

struct AttentionOptions {
  bool causal = true;
  int64_t q_offset = 0;  // queries continue a prefix: query i sits at absolute position i +
                         // q_offset, key j at j; causal: key j visible iff j <= i + q_offset
  int64_t window = 0;    // > 0: sliding window, key j visible only if j > i + q_offset - window
                         // (so at most `window` keys incl. itself)
  double scale = 0;      // 0 means 1/sqrt(head dim)
  int64_t num_buckets = 32, max_distance = 128;  // T5 relative bias parameters (used when
                                                 // rel_bias is given)
};

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

// T5's bucketing of a relative position (Raffel et al. 2020), relative_position = query pos - key
// pos. Unidirectional (for causal attention): positions <= 0 share bucket 0. Bidirectional: half
// the buckets for keys in the past, half (offset by num_buckets / 2) for keys in the future.
// Within each half, distances below half of it are exact and the rest logarithmic up to
// max_distance, clamped at the half's last bucket.
int64_t t5_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                  int64_t max_distance);

// Rotary position embedding (Su et al. 2021), GPT-NeoX/LLaMA half-split layout: pairs
// (x[..., i], x[..., i + D/2]) rotated by angle pos * base^(-2i/D), pos = offset + t. x [B,H,T,D],
// D even, f32 or f64, any strides. Differentiable (backward = rotation by -angle).
Tensor rotary(const Tensor& x, int64_t offset, double base = 10000.0);

}  // namespace rill
