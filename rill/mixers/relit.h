// ReLiT / GaLiTe (Pramanik et al. 2023, relit.md 1.2): gated recurrent linear attention with a
// learned outer-product feature map. Per head, on the gated features of gated_features.h
// (φ(k), φ(q) ∈ R^F with F = η·d, v and β ∈ R^d, γ ∈ (0,1)^F):
//
//   factorised (default, the form AReLiT approximates):
//     C_t = ((1-β_t)(1-γ_t)^T) ⊙ C_{t-1} + (β_t ⊙ v_t)(γ_t ⊙ φ(k_t))^T      C ∈ R^{d×F}
//     s_t = (1-γ_t) ⊙ s_{t-1} + γ_t ⊙ φ(k_t)                               s ∈ R^F
//     o_t = C_t φ(q_t) / (s_t·φ(q_t) + ε),  then W_o.
//   This is the gated-state op (ops/linear_attention.h) with keys γ⊙φ(k) [F], values
//   [β⊙v, 1] [d+1], queries φ(q), a key-side log-decay log(1-γ) and a value-side log-decay
//   [log(1-β), 0]: the op's state S [F, d+1] is [C^T | s], so the normaliser is its last column.
//   Every form of the op is available: the recurrent kernel, the chunked one (forward "form") and
//   the step.
//   projected_sigmoid (the update the authors' benchmarked GaLiTe runs use):
//     C_t = (1 - β_t ⊗ γ_t) ⊙ C_{t-1} + (β_t ⊗ γ_t) ⊙ (v_t ⊗ φ(k_t)),  s_t and o_t as above.
//   Its decay 1 - β⊗γ is not an outer product, so the op's factorised kernels do not apply; it is
//   a first-order linear recurrence per element of C, run by the linear_scan op, which keeps
//   every C_t: O(T·d·F) memory in training (recurrent form and step only).
// A decay 1-β or 1-γ is floored at 1e-6 before its log, so a saturated gate (σ = 1 in f32) gives
// a finite log-decay and gradient. Resets are native: a decay of exactly 0 at the reset step.
//
// Shapes: B batch, T time, D d_model, H heads, d head_dim, η eta, F = η·d.
// State per stream: factorised "S" [B,H,F,d+1] (= [C^T | s]); projected_sigmoid "C" [B,H,d,F]
// and "s" [B,H,F]. Both H·(η·d² + η·d) values per layer.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rill/mixers/gated_features.h"
#include "rill/mixers/mixer.h"
#include "rill/ops/linear_attention.h"

namespace rill {

enum class RelitUpdate { factorised, projected_sigmoid };
RelitUpdate parse_relit_update(const std::string& name);  // "factorised", "projected_sigmoid"

struct RelitConfig {
  int64_t d_model = 128, heads = 4;
  int64_t head_dim = 0;  // 0: d_model / heads
  int64_t eta = 4;
  RelitUpdate update = RelitUpdate::factorised;
  LinearAttentionForm form = LinearAttentionForm::chunked;  // factorised only
  int64_t chunk = 64;
  double eps = 1e-5;
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class RelitMixer : public Mixer {
 public:
  explicit RelitMixer(const RelitConfig& config);

  State init_state(int64_t batch) const override;
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return "relit"; }
  bool constant_state() const override { return true; }
  double mixing_flops_per_token(int64_t context) const override;

  const GatedFeatures& features() const { return *features_; }

  RelitConfig config;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;
  bool native_resets() const override { return true; }
  Tensor forward_native_resets(const Tensor& x, State* state, const Tensor& resets) override;

 private:
  Tensor forward_factorised(const Tensor& x, State* state, const Tensor& resets);
  Tensor forward_projected(const Tensor& x, State* state, const Tensor& resets);
  // The state's tensors and their shapes for B streams (init_state and check_state share it).
  std::vector<std::pair<std::string, Shape>> state_shapes(int64_t batch) const;
  void check_state(const State& s, int64_t batch) const;
  int64_t head_dim_ = 0, features_dim_ = 0;
  std::shared_ptr<GatedFeatures> features_;
};

}  // namespace rill
