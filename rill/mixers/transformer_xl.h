// Transformer-XL relative attention over a memory of the last M inputs (Dai et al. 2019), the
// attention of GTrXL (Parisotto et al. 2020; papers/relit.md §3). Shapes: B batch, T time,
// D d_model, H heads, Dh head_dim, M memory.
//
// Every token i attends to exactly the M tokens before it in its stream plus itself: keys j with
// i - M <= j <= i (a sliding window over the stream; tokens before the stream's start, or before
// a reset, are masked). With r = i - j in [0, M] and R_r the sinusoidal embedding [D] of r:
//   score_ij = (q_i.k_j + q_i.W_r R_r + u.k_j + v.W_r R_r) / sqrt(Dh)
//   out_i    = W_o concat_h( sum_j softmax_j(score_ij) v_j )
// where u, v [H, Dh] are the global content and position biases and W_r [H*Dh, D] is learned.
// Because the span is a window of M + 1, the parallel form over a segment, the segment in pieces
// with the memory carried, and the step form with a rolling memory compute the same function.
// That function is GTrXL as it runs in RL, one step at a time with memory M: there each new
// observation attends to the M cached hidden states and itself. (Trained on segments of T > 1,
// GTrXL lets the first token of a segment see M earlier tokens and the last one M + T - 1; here
// every token sees M, so training and acting agree.)
//
// Differences from DI-engine's gtrxl.py, deliberate: the query comes from the same (normalised)
// input as the keys, since the block normalises before the mixer; no stop-gradient on the
// memory (the trainer detaches the state between segments; inside a segment gradients flow).
//
// State, a fixed shape per stream so it is constant-size and resettable per stream:
//   count [B] i64: how many memory slots hold real tokens (the newest are at the end)
//   no_cache: x [B, M, D], the last M inputs; keys and values are recomputed every step, and so
//             is W_r R (GTrXL as coded)
//   kv_cache: k, v [B, H, M, Dh], the projected keys and values of the last M inputs; the step
//             reads W_r R from a table kept between steps, so a step costs O(M) beyond its own
//             projections
#pragma once
#include <memory>
#include <string>

#include "rill/mixers/mixer.h"
#include "rill/mixers/multi_head.h"
#include "rill/mixers/softmax_attention.h"

namespace rill {

struct TransformerXLConfig {
  int64_t d_model = 256, heads = 4;
  int64_t head_dim = 0;  // 0: d_model / heads
  int64_t memory = 64;   // M, tokens before the current one that it attends to
  StepMode step_mode = StepMode::kv_cache;
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class TransformerXLMixer : public Mixer {
 public:
  explicit TransformerXLMixer(const TransformerXLConfig& config);

  State init_state(int64_t batch) const override;  // count 0: every slot masked
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return "transformer_xl"; }
  bool constant_state() const override { return true; }  // bounded by M, whatever the context
  // The whole window is computed whatever the context (unfilled slots are masked, not skipped).
  // kv_cache: q.k, q.W_r R and p.v over M + 1 keys. no_cache adds what it recomputes per token:
  // the keys and values of the M memory entries and the position table W_r R.
  double mixing_flops_per_token(int64_t context) const override;

  TransformerXLConfig config;
  int64_t head_dim() const { return head_dim_; }

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;

 private:
  // W_r R as [H, M+1, Dh], row r for distance r. On the tape in forward; the kv_cache step reads
  // a table computed once and recomputed only when W_r has changed.
  Tensor position_keys(bool use_table);
  Tensor run(const Tensor& x, State* state, bool use_table);

  int64_t head_dim_;
  std::shared_ptr<MultiHeadProjection> proj_;
  std::shared_ptr<nn::Linear> w_r_;  // D -> H*Dh, no bias
  Tensor u_, v_;                     // [H, Dh]
  Tensor sinusoid_;                  // R [M+1, D], buffer
  Tensor table_, table_w_;           // cached W_r R [H, M+1, Dh] and the W_r it was made from
};

}  // namespace rill
