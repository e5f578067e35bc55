// Aaren (Feng et al. 2024, "Attention as an RNN"; aaren-crt.md 1.3): attention whose query is
// not a token but a learned, input-independent vector q per layer, so every output is the
// causal softmax attention of that one query over the tokens so far, and the sequence can be
// processed as a many-to-many RNN. The rest is a transformer's attention unchanged: W_q, W_k,
// W_v and W_o, multi-head, scores scaled by 1/sqrt(d):
//   q~_h = (W_q q)_h,   s_t,h = q~_h . (W_k x_t)_h / sqrt(d),   v_t,h = (W_v x_t)_h,
//   o_t,h = sum_{i<=t} softmax_i(s_{<=t},h) v_i,h,   y_t = W_o [o_t,1 .. o_t,H].
// The paper's parameter count (one d-vector more than the transformer it replaces) holds:
// q [D] is the only addition.
// Forms: forward is the softmax scan op (ops/softmax_scan.h: a parallel prefix scan over
// (m, u, w), fused O(T)-memory backward); step is the same op over one token. The keys are never
// formed: s_t,h = x_t . (W_k,h^T q~_h) / sqrt(d), one [D, H] product instead of a [D, H*d] one
// (the same function and the same parameters, W_k's gradient flowing through W_k,h^T q~_h).
// Resets are native (the scan restarts from its identity).
//
// Shapes: B batch, T time, D d_model, H heads, d head_dim.
// State per stream: "lse" [B,H] the log total weight of the tokens seen (-inf when fresh: the
// scan's identity, never the paper's m0 = 0) and "o" [B,H,d] their weighted average: d + 1
// numbers per head, whatever the context.
#pragma once
#include <memory>
#include <string>
#include <utility>

#include "rill/mixers/mixer.h"
#include "rill/mixers/multi_head.h"

namespace rill {

struct AarenConfig {
  int64_t d_model = 128, heads = 4;
  int64_t head_dim = 0;  // 0: d_model / heads
  bool bias = false;     // biases on W_q, W_k, W_v, W_o (the paper's count has them)
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class AarenMixer : public Mixer {
 public:
  explicit AarenMixer(const AarenConfig& config);

  State init_state(int64_t batch) const override;
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return "aaren"; }
  bool constant_state() const override { return true; }
  // The scan: per head and token, a rescale and an add over d values and a division.
  double mixing_flops_per_token(int64_t context) const override {
    return 4.0 * config.heads * head_dim_;
  }

  // The scores' weights with the keys folded in: u [H, D] = W_k,h^T q~_h / sqrt(d) and, with
  // biases, c [H] = b_k,h . q~_h / sqrt(d) (undefined without): s_t,h = u_h . x_t + c_h.
  std::pair<Tensor, Tensor> score_weights() const;
  std::unique_ptr<MixerStepper> make_stepper(int64_t batch, WeightFormat format) override;

  AarenConfig config;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;
  bool native_resets() const override { return true; }
  Tensor forward_native_resets(const Tensor& x, State* state, const Tensor& resets) override;

 private:
  Tensor run(const Tensor& x, State* state, const Tensor& resets);
  void check_state(const State& s, int64_t batch) const;
  friend class AarenStepper;
  int64_t head_dim_;
  Tensor query_;  // [D] the learned query token q
  std::shared_ptr<MultiHeadProjection> proj_;
};

}  // namespace rill
