// The kernel arguments of the gated-state op (causal linear attention with decays), shared by the
// ref and cpu backends so that every form of the op (recurrent, chunked, step) and every backend
// takes one struct: a new decay is a new field here and a new branch in the kernels, not a new
// signature.
//
//   S_t = (a_t b_t^T) ⊙ S_{t-1} + k_t v_t^T,   out_t = S_t^T q_t,   S_{-1} = s0.
//
// Today the decay is the scalar case a_t b_t^T = exp(g_t) (one number per step and sequence).
// Shapes: N = B*H independent sequences, T tokens, Dk key size, Dv value size. Every tensor is
// contiguous. The step form's kernels take one token's tensors as the op got them (q, k [B,H,Dk],
// v [B,H,Dv], g [N,1]) with the state beside them; the accessors below are the sequence forms'.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill {

struct GatedStateArgs {
  Tensor q, k;  // [N,T,Dk]
  Tensor v;     // [N,T,Dv]
  Tensor s0;    // [N,Dk,Dv]; undefined = zeros
  Tensor g;     // [N,T] scalar log-decay, every value <= 0; undefined = no decay (g = 0)
  // Planned, not implemented: key-side and value-side log-decays, log a_t [N,T,Dk] and
  // log b_t [N,T,Dv]. They will enter the same kernels: the recurrent scan decays its state
  // slab lane-wise, the chunked form rescales the rows of Q, K (by a) and V (by b).

  int64_t n() const { return q.size(0); }
  int64_t len() const { return q.size(1); }
  int64_t dk() const { return q.size(2); }
  int64_t dv() const { return v.size(2); }
  bool scalar_decay() const { return g.defined(); }
};

// What a backward kernel writes: dq, dk [N,T,Dk] and dv [N,T,Dv] always; ds0 [N,Dk,Dv] and
// dg [N,T] when defined (undefined = not wanted; dg is only wanted when the args have g).
struct GatedStateGrads {
  Tensor dq, dk, dv;
  Tensor ds0;
  Tensor dg;
};

}  // namespace rill
