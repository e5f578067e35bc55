// Cpu kernels of the gated-state op with vector decays (GatedStateArgs::ga, gb):
//   S_t = (a_t b_t^T) ⊙ S_{t-1} + k_t v_t^T,   out_t = S_t^T q_t,   a_t = exp(ga_t), b_t =
//   exp(gb_t),
// in the op's three forms. linear_attention.cpp's entry points call these when the args carry a
// vector decay; the scalar decay and no decay stay on its kernels. Internal to the cpu backend.
#pragma once
#include <cstdint>

#include "rill/backend/linear_attention.h"

namespace rill::cpu {

void vector_decay_recurrent_forward(const GatedStateArgs& a, const Tensor& out,
                                    const Tensor& s_final);
void vector_decay_recurrent_backward(const GatedStateArgs& a, const Tensor& dout,
                                     const Tensor& ds_final, const GatedStateGrads& grads);
void vector_decay_chunked_forward(const GatedStateArgs& a, int64_t chunk, const Tensor& out,
                                  const Tensor& s_final);
void vector_decay_chunked_backward(const GatedStateArgs& a, const Tensor& dout,
                                   const Tensor& ds_final, int64_t chunk,
                                   const GatedStateGrads& grads);
// One token: q, k [B,H,Dk], v [B,H,Dv], ga [N,1,Dk], gb [N,1,Dv]; s [B,H,Dk,Dv] in place.
void vector_decay_step(const GatedStateArgs& a, const Tensor& s, const Tensor& out);

}  // namespace rill::cpu
