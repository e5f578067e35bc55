// Linear attention as an RNN (Katharopoulos et al. 2020, papers/linear-attention.md).
// Shapes: B batch, T time, D d_model, H heads, Dk = Dv = head_dim, Da = Dv + 1 when the
// normaliser is on (z rides along as an extra column of ones in v, so S [B,H,Dk,Da] holds both
// the numerator state and z).
//   y_i = phi(q_i)^T S_i / (phi(q_i)^T z_i + eps),  S_i = S_{i-1} + phi(k_i) v_i^T
// Forms: forward() runs the recurrent kernel or the chunkwise-parallel one (config.form);
// step() is the per-token recurrence. Without the normaliser the output of each head is
// RMS-normalised with a learned gain instead (as fla's linear attention layer does).
#pragma once
#include <memory>
#include <string>

#include "rill/mixers/mixer.h"
#include "rill/mixers/multi_head.h"
#include "rill/ops/linear_attention.h"

namespace rill {

enum class FeatureMap { elu1, relu };
FeatureMap parse_feature_map(const std::string& name);  // "elu1" or "relu"

struct LinearAttentionConfig {
  int64_t d_model = 256, heads = 4;
  int64_t head_dim = 0;  // 0: d_model / heads
  FeatureMap feature_map = FeatureMap::elu1;
  bool normalize = true;  // false: drop the denominator and RMS-normalise each head's output
  double eps = 1e-6;      // added to the denominator (as fast-transformers)
  LinearAttentionForm form = LinearAttentionForm::chunked;
  int64_t chunk = 64;
  bool causal = true;  // false: every position sees the whole sequence (no state, no step)
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class LinearAttentionMixer : public Mixer {
 public:
  explicit LinearAttentionMixer(const LinearAttentionConfig& config);

  State init_state(int64_t batch) const override;  // S [B, H, Dk, Da], zeros
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return "linear_attention"; }
  bool constant_state() const override { return true; }
  double mixing_flops_per_token(int64_t) const override {
    return 4.0 * config.heads * head_dim_ * state_cols_;  // rank-1 update + read-out
  }

  LinearAttentionConfig config;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;

 private:
  Tensor feature(const Tensor& x) const;
  Tensor readout(const Tensor& num_aug) const;  // [.., Da] -> [.., Dv]: divide or RMS-normalise
  int64_t head_dim_, state_cols_;
  std::shared_ptr<MultiHeadProjection> proj_;
  Tensor out_gain_;  // [Dv], only without the normaliser
};

}  // namespace rill
