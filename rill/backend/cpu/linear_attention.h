// Fast kernels of the gated-state op (causal linear attention, optionally with a scalar decay) in
// its three forms: a fused per-token scan (recurrent), chunk-level GEMMs (chunked), and one token
// with the state updated in place (step). All are deterministic: every output element is
// computed by one fixed sequence of operations, whatever the thread count.
//
// Shapes: N = B*H independent sequences, T tokens, Dk key size, Dv value size; the arguments'
// layout is in rill/backend/linear_attention.h.
#pragma once
#include <cstdint>

#include "rill/backend/linear_attention.h"

namespace rill::cpu {

// out_t = S_t^T q_t with S_t = exp(g_t) S_{t-1} + k_t v_t^T; s_final = S_{T-1}.
void linear_attention_recurrent_forward(const GatedStateArgs& a, const Tensor& out,
                                        const Tensor& s_final);
// The paper's memory-efficient backward (Algorithm 1), decayed: no per-token state is stored.
void linear_attention_recurrent_backward(const GatedStateArgs& a, const Tensor& dout,
                                         const Tensor& ds_final, const GatedStateGrads& grads);

// The same function, chunk tokens at a time (chunk > 0; T need not be a multiple).
void linear_attention_chunked_forward(const GatedStateArgs& a, int64_t chunk, const Tensor& out,
                                      const Tensor& s_final);
// Recomputes the T/chunk chunk-start states, then carries dS backwards over chunks.
void linear_attention_chunked_backward(const GatedStateArgs& a, const Tensor& dout,
                                       const Tensor& ds_final, int64_t chunk,
                                       const GatedStateGrads& grads);

// One token: a holds its q, k [B,H,Dk], v [B,H,Dv] and g [B*H, 1] (a.s0 unused);
// s [B,H,Dk,Dv] <- exp(g) s + k v^T in place, then out [B,H,Dv] = s^T q. All contiguous.
void linear_attention_step(const GatedStateArgs& a, const Tensor& s, const Tensor& out);

}  // namespace rill::cpu
