// Reference kernels of the gated-state op (causal linear attention with a scalar decay), in its
// sequence form and its one-token step form: plain loops over tokens keeping the state, and a
// backward that stores every state. Naive on purpose: the oracle for the cpu forms.
//
// Shapes: N = B*H independent sequences, T tokens, Dk key size, Dv value size.
#pragma once
#include "rill/backend/linear_attention.h"

namespace rill::ref {

// Writes out [N,T,Dv] with out_t = S_t^T q_t, S_t = exp(g_t) S_{t-1} + k_t v_t^T (S_{-1} = s0,
// exp(g_t) = 1 without g), and s_final [N,Dk,Dv] = S_{T-1} (s0 when T == 0).
void linear_attention_forward(const GatedStateArgs& a, const Tensor& out, const Tensor& s_final);
// From the forward's inputs and the gradients of out [N,T,Dv] and s_final [N,Dk,Dv] (contiguous),
// writes the gradients named in `grads`.
void linear_attention_backward(const GatedStateArgs& a, const Tensor& dout, const Tensor& ds_final,
                               const GatedStateGrads& grads);
// One token: a holds its q, k [B,H,Dk], v [B,H,Dv] and g [B*H, 1] (a.s0 unused);
// s [B,H,Dk,Dv] <- exp(g) s + k v^T in place, then out [B,H,Dv] = s^T q. All contiguous.
void linear_attention_step(const GatedStateArgs& a, const Tensor& s, const Tensor& out);

}  // namespace rill::ref
