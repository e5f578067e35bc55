// Fast kernels of the causal linear-attention numerator, in its two forms: a fused per-token
// scan (recurrent) and chunk-level GEMMs (chunked). Both are deterministic: every output element
// is computed by one fixed sequence of operations, whatever the thread count.
//
// Shapes: N = B*H independent sequences, T tokens, Dk key size, Dv value size.
// Every tensor is contiguous: q, k [N,T,Dk], v and out [N,T,Dv], states [N,Dk,Dv];
// s0 undefined means zeros, ds0 undefined means not wanted.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::cpu {

// out_t = S_t^T q_t with S_t = S0 + sum_{j<=t} k_j v_j^T; s_final = S_{T-1}.
void linear_attention_recurrent_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const Tensor& s0, const Tensor& out, const Tensor& s_final);
// The paper's memory-efficient backward (Algorithm 1): no per-token state is stored.
void linear_attention_recurrent_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& s0, const Tensor& dout,
                                         const Tensor& ds_final, const Tensor& dq, const Tensor& dk,
                                         const Tensor& dv, const Tensor& ds0);

// The same function, chunk tokens at a time (chunk > 0; T need not be a multiple).
void linear_attention_chunked_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const Tensor& s0, int64_t chunk, const Tensor& out,
                                      const Tensor& s_final);
// Recomputes the T/chunk chunk-start states, then carries dS backwards over chunks.
void linear_attention_chunked_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const Tensor& s0, const Tensor& dout, const Tensor& ds_final,
                                       int64_t chunk, const Tensor& dq, const Tensor& dk,
                                       const Tensor& dv, const Tensor& ds0);

}  // namespace rill::cpu
