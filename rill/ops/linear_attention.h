// Linear attention (Katharopoulos et al. 2020) as the gated-state op of DESIGN.md,
//   S_t = gamma_t S_{t-1} + k_t v_t^T,   out_t = S_t^T q_t,   gamma_t = exp(g_t) (1 without decay),
// in its three forms (recurrent, chunked, and the one-token step), plus the non-causal form.
// With a per-head constant g this is RetNet's retention; with g computed from the input, a
// data-dependent scalar gate (Mamba-2 / simple GLA style).
//
// Shapes: B batch, H heads, T tokens, Dk key/query feature size (after the feature map),
// Dv value size (any size: a mixer appends a column of ones to v to get the normaliser).
#pragma once
#include <cstdint>
#include <utility>

#include "rill/core/tensor.h"

namespace rill {

// Which cpu kernel computes the causal numerator. Both compute the same function; the ref
// backend ignores the choice (it is the oracle for both).
//  recurrent: a fused per-token scan; backward by the paper's Algorithm 1, O(T) memory.
//  chunked:   per chunk of `chunk` tokens, out = Q S_start + tril(Q K^T) V and
//             S_next = S_start + K^T V (decayed: see the kernels), as small GEMMs; backward keeps
//             T/chunk states.
enum class LinearAttentionForm { recurrent, chunked };

// The decays of the state, in log space: S_t = (gamma_t a_t b_t^T) ⊙ S_{t-1} + k_t v_t^T with
// gamma_t = exp(g_t), a_t = exp(ga_t), b_t = exp(gb_t); any may be left out (= 1). Every value
// <= 0 (NaN passes through); each is differentiable, its gradient summed over broadcast dims.
struct LinearAttentionDecay {
  LinearAttentionDecay(Tensor g = Tensor(), Tensor ga = Tensor(), Tensor gb = Tensor(),
                       Tensor resets_ = Tensor())
      : log_decay(std::move(g)),
        key_log_decay(std::move(ga)),
        value_log_decay(std::move(gb)),
        resets(std::move(resets_)) {}
  // g: a scalar per step and head, broadcasting to [B,H,T] (the step form: to [B,H]). [B,H,T]
  // is a data-dependent gate; [1,H,1] a fixed per-head decay, e.g. RetNet's log(1 - 2^(-5-h)).
  Tensor log_decay;
  // ga: a key-side vector, broadcasting to [B,H,T,Dk] (step: [B,H,Dk]); it decays the rows of S
  // (GLA's gate; ReLiT's 1 - gamma).
  Tensor key_log_decay;
  // gb: a value-side vector, broadcasting to [B,H,T,Dv] (step: [B,H,Dv]); it decays the columns
  // of S (ReLiT's 1 - beta).
  Tensor value_log_decay;
  // resets [B,T] (step: [B]), any dtype, nonzero where a stream starts afresh: its state before
  // token t is zero (s0 for the first token), as if the sequence were cut there. Not
  // differentiable; the decays at a reset step get a zero gradient (they multiply nothing).
  Tensor resets;
};

// Causal numerator with an initial state and a decay: out_i = S_i^T q_i with
// S_i = D_i ⊙ S_{i-1} + k_i v_i^T, S_{-1} = s0, D_i the decay above.
// q, k [B,H,T,Dk] (already feature-mapped), v [B,H,T,Dv], s0 [B,H,Dk,Dv] (undefined = zeros).
// Returns {out [B,H,T,Dv], s_final [B,H,Dk,Dv]}. Differentiable w.r.t. q, k, v, s0 and the
// log-decays, with gradients arriving at out AND s_final. chunk (> 0) is the chunked form's chunk
// length; T need not be a multiple of it.
std::pair<Tensor, Tensor> causal_linear_attention(
    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
    const LinearAttentionDecay& decay, LinearAttentionForm form = LinearAttentionForm::chunked,
    int64_t chunk = 64);
// The same without decay (gamma_t = 1): plain causal linear attention.
std::pair<Tensor, Tensor> causal_linear_attention(
    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
    LinearAttentionForm form = LinearAttentionForm::chunked, int64_t chunk = 64);

// The step form: one token, the state updated in place, no tape. The op's inputs with the T
// dim removed: q, k [B,H,Dk], v [B,H,Dv], the decays broadcasting to [B,H], [B,H,Dk], [B,H,Dv],
// resets [B]; s [B,H,Dk,Dv] contiguous: s <- D ⊙ s + k v^T (D = 0 where a stream resets), then
// returns out [B,H,Dv] = s^T q. Refuses to run while recording a tape (it mutates s).
Tensor linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                             const LinearAttentionDecay& decay);
Tensor linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s);

// Non-causal: out = q (k^T v) per (b, h), composed from matmul; differentiable through autograd.
// q [B,H,Tq,Dk], k [B,H,T,Dk], v [B,H,T,Dv] -> [B,H,Tq,Dv].
Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v);
// The same with a state added to the keys' sum: out = q (s0 + k^T v); s0 [B,H,Dk,Dv] (undefined
// = zeros).
Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& s0);

}  // namespace rill
