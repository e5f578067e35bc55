// Reference kernels of the causal linear-attention numerator: plain loops over tokens keeping the
// state, and a backward that stores every state. Naive on purpose: the oracle for the cpu forms.
//
// Shapes: N = B*H independent sequences, T tokens, Dk key size, Dv value size.
#pragma once
#include "rill/core/tensor.h"

namespace rill::ref {

// q, k contiguous [N,T,Dk], v [N,T,Dv]; s0 contiguous [N,Dk,Dv] or undefined (zeros).
// Writes out [N,T,Dv] with out_t = S_t^T q_t, S_t = S0 + sum_{j<=t} k_j v_j^T, and
// s_final [N,Dk,Dv] = S_{T-1} (S0 when T == 0).
void linear_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                              const Tensor& out, const Tensor& s_final);
// From the forward's inputs and the gradients of out [N,T,Dv] and s_final [N,Dk,Dv] (contiguous),
// writes dq, dk [N,T,Dk], dv [N,T,Dv] and, when defined, ds0 [N,Dk,Dv].
void linear_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                               const Tensor& dout, const Tensor& ds_final, const Tensor& dq,
                               const Tensor& dk, const Tensor& dv, const Tensor& ds0);

}  // namespace rill::ref
