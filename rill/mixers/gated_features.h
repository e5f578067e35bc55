// The gated feature projections shared by ReLiT and AReLiT (relit.md 1.2, the authors' agalite.py):
// per layer one fused projection d_model -> 5·H·d split into k, q, v, β̂, γ̂, one d_model -> 3·H·η
// split into p1, p2, p3 (both orthogonal init, gain √2, zero bias), and the output projection
// W_o: H·d -> d_model. From them, per head:
//   φ(k) = vec(relu(p1) ⊗ relu(k))  ∈ R^{ηd}   η-major: element n·d + j = relu(p1)_n relu(k)_j
//   φ(q) = vec(relu(p2) ⊗ relu(q))  ∈ R^{ηd}
//   γ    = vec(σ(p3) ⊗ σ(γ̂))        ∈ (0,1)^{ηd}, same order
//   β    = σ(β̂)                     ∈ (0,1)^d
//   v                                ∈ R^d
// A module, not a mixer: ReLiT (C_t = ((1-β)(1-γ)^T) ⊙ C_{t-1} + (β⊙v)(γ⊙φ(k))^T) and AReLiT
// (its low-rank cosine approximation) run their own recurrences on these tensors.
//
// Shapes: B batch, T time, D d_model, H heads, d head_dim, η eta (feature multiplier), F = η·d.
// Weight layout (for porting): the fused weight's rows are [k | q | v | β̂ | γ̂], each block H·d
// rows, head-major (row h·d + j); the p weight's rows are [p1 | p2 | p3], each H·η rows (h·η + n).
#pragma once
#include <memory>

#include "rill/nn/linear.h"

namespace rill {

struct GatedFeaturesConfig {
  int64_t d_model = 128, heads = 4, head_dim = 64, eta = 4;
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

// The per-head tensors of a sequence ([B,H,T,·], from forward) or of one token ([B,H,·], from
// step): the same names and last dims in both.
struct GatedFeatureTensors {
  Tensor phi_k;  // [B,H,T,F] (step: [B,H,F]), >= 0
  Tensor phi_q;  // [B,H,T,F], >= 0
  Tensor v;      // [B,H,T,d]
  Tensor beta;   // [B,H,T,d], in (0,1): the value-side forget/write gate
  Tensor gamma;  // [B,H,T,F], in (0,1): the feature-side forget/write gate
};

class GatedFeatures : public nn::Module {
 public:
  explicit GatedFeatures(const GatedFeaturesConfig& config);

  // x [B,T,D] -> the per-head tensors [B,H,T,·]. Differentiable (records a tape in grad mode).
  GatedFeatureTensors forward(const Tensor& x) const;
  // x_t [B,D] -> the same tensors for one token, [B,H,·].
  GatedFeatureTensors step(const Tensor& x_t) const;
  // W_o: heads [B,T,H,d] (time-major, as the recurrences leave them) -> [B,T,D]. Any leading dims
  // work: [B,H,d] -> [B,D] for one token.
  Tensor out(const Tensor& heads) const;

  int64_t heads() const { return config_.heads; }
  int64_t head_dim() const { return config_.head_dim; }
  int64_t eta() const { return config_.eta; }
  int64_t feature_dim() const { return config_.eta * config_.head_dim; }  // F = η·d
  const GatedFeaturesConfig& config() const { return config_; }

 private:
  GatedFeaturesConfig config_;
  std::shared_ptr<nn::Linear> kqvbg_;  // D -> 5·H·d
  std::shared_ptr<nn::Linear> p_;      // D -> 3·H·η
  std::shared_ptr<nn::Linear> o_;      // H·d -> D
};

}  // namespace rill
