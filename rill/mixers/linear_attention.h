// Linear attention as an RNN (Katharopoulos et al. 2020, papers/linear-attention.md).
// Shapes: B batch, T time, D d_model, H heads, Dk = Dv = head_dim, Da = Dv + 1 when the
// normaliser is on (z rides along as an extra column of ones in v, so S [B,H,Dk,Da] holds both
// the numerator state and z).
//   y_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps),  S_i = gamma_i S_{i-1} + phi(k_i) v_i^T
// Forms: forward() runs the recurrent kernel or the chunkwise-parallel one (config.form);
// step() is the per-token recurrence. Without the normaliser the output of each head is
// RMS-normalised with a learned gain instead (as fla's linear attention layer does).
//
// The decay gamma of the state (the scalar case of the gated-state op, ops/linear_attention.h),
// "decay" in the config:
//   none     gamma = 1: the paper's linear attention; the state sums the whole context
//   retnet   a fixed gamma per head, 1 - 2^(-5-h) (RetNet, Sun et al. 2023): head h forgets over
//            about 2^(5+h) tokens
//   learned  a learned gamma per head, log gamma_h = -softplus(theta_h), from the RetNet values
//   input    a gamma per head and token from the input, log gamma = -softplus(x W_g + b_g)
//            (a scalar gate as in Mamba-2 and simple GLA), b_g from the RetNet values
// With a decay the state forgets on its own, so a model needs no periodic reset of its state.
#pragma once
#include <memory>
#include <string>

#include "rill/mixers/mixer.h"
#include "rill/mixers/multi_head.h"
#include "rill/nn/linear.h"
#include "rill/ops/linear_attention.h"

namespace rill {

enum class FeatureMap { elu1, relu };
FeatureMap parse_feature_map(const std::string& name);  // "elu1" or "relu"

enum class DecayKind { none, retnet, learned, input };
DecayKind parse_decay_kind(const std::string& name);  // "none", "retnet", "learned", "input"

struct LinearAttentionConfig {
  int64_t d_model = 256, heads = 4;
  int64_t head_dim = 0;  // 0: d_model / heads
  FeatureMap feature_map = FeatureMap::elu1;
  bool normalize = true;  // false: drop the denominator and RMS-normalise each head's output
  double eps = 1e-6;      // added to the denominator (as fast-transformers)
  LinearAttentionForm form = LinearAttentionForm::chunked;
  int64_t chunk = 64;
  DecayKind decay = DecayKind::none;
  bool causal = true;  // false: every position sees the whole sequence (no state, no step)
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class LinearAttentionStepper;

class LinearAttentionMixer : public Mixer {
  friend class LinearAttentionStepper;

 public:
  explicit LinearAttentionMixer(const LinearAttentionConfig& config);

  State init_state(int64_t batch) const override;  // S [B, H, Dk, Da], zeros
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return "linear_attention"; }
  bool constant_state() const override { return true; }
  double mixing_flops_per_token(int64_t) const override {
    return 4.0 * config.heads * head_dim_ * state_cols_;  // rank-1 update + read-out
  }

  std::unique_ptr<MixerStepper> make_stepper(int64_t batch, WeightFormat format) override;

  LinearAttentionConfig config;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;
  // Resets go into the op's kernels (a decay of exactly 0 at the reset step).
  bool native_resets() const override { return config.causal; }
  Tensor forward_native_resets(const Tensor& x, State* state, const Tensor& resets) override;

 private:
  // The forward with resets [B,T] in x's dtype, or undefined for none.
  Tensor forward_with(const Tensor& x, State* state, const Tensor& resets);
  Tensor feature(const Tensor& x) const;
  // log gamma for x [B, T, D]: undefined (no decay), [1, H, 1], or [B, H, T] (input gates).
  Tensor log_decay(const Tensor& x) const;
  Tensor readout(const Tensor& num_aug) const;  // [.., Da] -> [.., Dv]: divide or RMS-normalise
  int64_t head_dim_, state_cols_;
  std::shared_ptr<MultiHeadProjection> proj_;
  Tensor out_gain_;  // [Dv], only without the normaliser
  Tensor decay_;     // retnet: log gamma [1, H, 1] (a buffer); learned: theta [1, H, 1]
  std::shared_ptr<nn::Linear> gate_;  // input: D -> H, its bias from the RetNet values
};

}  // namespace rill
