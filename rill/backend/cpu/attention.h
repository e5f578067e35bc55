// Fast kernels of softmax attention and rotary embeddings. Attention is FlashAttention-2 style:
// an online softmax over 64 x 64 tiles of queries and keys that never materialises Tq x Tk and
// saves only the per-row logsumexp; the backward recomputes probabilities tile by tile. OpenMP
// runs over (b, h, tile) with every output element owned by one task, and every cross-task sum
// taken in a fixed order, so results are bitwise the same for any thread count.
//
// Shapes: B batch, H heads, Tq queries, Tk keys, D query/key head dim, Dv value head dim,
// NB = opt.num_buckets. Every tensor a kernel sees is contiguous, except that the forward's k
// and v may be views with packed rows and one stride between (b, h) slices: a KV cache read in
// place from the buffer it grows in (ops/index.h append).
#pragma once
#include <cstdint>

#include "rill/backend/attention_params.h"
#include "rill/core/tensor.h"

namespace rill::cpu {

// q [B,H,Tq,D], k [B,H,Tk,D], v [B,H,Tk,Dv]; rel_bias [NB,H] or undefined; opt.scale already
// resolved (never 0). Writes out [B,H,Tq,Dv] and lse [B,H,Tq], the log of the softmax
// denominator over the visible keys (+inf for a row with none, whose output is 0).
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                       const AttentionOptions& opt, const Tensor& out, const Tensor& lse);
// Gradients of sum(dout * out) into dq, dk, dv (shaped like q, k, v) and, when defined, drel_bias
// [NB,H], from the saved out and lse (D_i = rowsum(dout_i * out_i)). dq comes from one pass over
// query tiles, dk, dv and drel_bias from one over key tiles: no two tasks write one element.
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                        const Tensor& out, const Tensor& lse, const Tensor& dout,
                        const AttentionOptions& opt, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv, const Tensor& drel_bias);

// y = x rotated pairwise (half-split layout) by angle (offset + t) * base^(-2i/D), or by minus
// that angle when `inverse` (the backward). x, y [B,H,T,D], D even.
void rotary(const Tensor& x, int64_t offset, double base, bool inverse, const Tensor& y);

}  // namespace rill::cpu
