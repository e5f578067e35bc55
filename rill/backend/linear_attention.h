// The kernel arguments of the gated-state op (causal linear attention with decays), shared by the
// ref and cpu backends so that every form of the op (recurrent, chunked, step) and every backend
// takes one struct: a new decay is a new field here and a new branch in the kernels, not a new
// signature.
//
//   S_t = (a_t b_t^T) ⊙ S_{t-1} + k_t v_t^T,   out_t = S_t^T q_t,   S_{-1} = s0.
//
// The decay comes in two kinds, never both in one call (the op folds a scalar into a vector):
//   scalar: a_t b_t^T = exp(g_t), one number per step and sequence (RetNet, Mamba-2, GLA-scalar);
//   vector: a_t = exp(ga_t) over the key side and/or b_t = exp(gb_t) over the value side
//           (GLA, ReLiT's (1-gamma)(1-beta)^T); an undefined side is 1.
// Log-decays are <= 0; -inf is allowed and means a decay of exactly 0 (a reset: the op writes
// -inf where a stream starts afresh), so every kernel forms only partial sums of log-decays,
// never a difference of two prefix sums (inf - inf) nor exp(-sum) (overflow).
// Shapes: N = B*H independent sequences, T tokens, Dk key size, Dv value size. Every tensor is
// contiguous. The step form's kernels take one token's tensors as the op got them (q, k [B,H,Dk],
// v [B,H,Dv], g [N,1], ga [N,1,Dk], gb [N,1,Dv]) with the state beside them; the accessors below
// are the sequence forms'.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill {

struct GatedStateArgs {
  Tensor q, k;  // [N,T,Dk]
  Tensor v;     // [N,T,Dv]
  Tensor s0;    // [N,Dk,Dv]; undefined = zeros
  Tensor g;     // [N,T] scalar log-decay, every value <= 0; undefined = no decay (g = 0)
  Tensor ga;    // [N,T,Dk] key-side log-decay (rows of S); undefined = none
  Tensor gb;    // [N,T,Dv] value-side log-decay (columns of S); undefined = none

  int64_t n() const { return q.size(0); }
  int64_t len() const { return q.size(1); }
  int64_t dk() const { return q.size(2); }
  int64_t dv() const { return v.size(2); }
  bool scalar_decay() const { return g.defined(); }
  bool vector_decay() const { return ga.defined() || gb.defined(); }
};

// What a backward kernel writes: dq, dk [N,T,Dk] and dv [N,T,Dv] always; ds0 [N,Dk,Dv], dg
// [N,T], dga [N,T,Dk] and dgb [N,T,Dv] when defined (undefined = not wanted; a decay's gradient
// is only wanted when the args have that decay).
struct GatedStateGrads {
  Tensor dq, dk, dv;
  Tensor ds0;
  Tensor dg;
  Tensor dga, dgb;
};

}  // namespace rill
