// AReLiT / AGaLiTe (Pramanik et al. 2023, relit.md 1.4): ReLiT's gated state C_t [d, ηd] replaced
// by r cosine components, so per-step cost and state no longer scale with d·ηd. Per head, with the
// gated features of gated_features.h (φ(k), φ(q), v, β, γ) and the stream's tick τ_t:
//   ṽ_t^l = (1-β_t) ⊙ ṽ_{t-1}^l + cos(ω_l τ_t) β_t ⊙ v_t          ṽ^l ∈ R^d
//   k̃_t^l = (1-γ_t) ⊙ k̃_{t-1}^l + cos(ω_l τ_t) γ_t ⊙ φ(k_t)       k̃^l ∈ R^{ηd}
//   s_t   = (1-γ_t) ⊙ s_{t-1} + γ_t ⊙ φ(k_t)
//   o_t   = Σ_l ṽ_t^l (k̃_t^l · φ(q_t)) / (c · s_t·φ(q_t) + ε),   then W_o.
// Unrolled, Σ_l ṽ^l k̃^lᵀ = Σ_{i,j} K(i,j) ṽ_i k̃_jᵀ with K(i,j) = Σ_l cos(ω_l i) cos(ω_l j),
// where the exact C_t has δ_ij; c rescales K to ≈ δ.
//
// Frequency modes ("mode" in the config):
//   distinct   (default) ω_l = π(l + ½)/r, l = 0..r-1: r distinct frequencies in (0, π), c = r/2.
//              For integers i, j: K(i,j) = ½[S(i-j) + S(i+j)] with S(m) = Σ_l cos(ω_l m), and S(m)
//              is r·(-1)^{m/2r} when 2r divides m and exactly 0 otherwise (a geometric sum), so
//              K = (r/2)·δ_ij for every pair with |i-j| < 2r, except pairs with 2r | (i+j). With
//              decays only recent pairs matter, so with r past the memory's length the surrogate
//              is exact but for those aliased pairs, and the output tends to ReLiT's (tested).
//              Ticks start at 0 (the first token has τ = 1).
//   reference  the authors' code: ω = linspace(-π, π, r), c = 2r, first τ = 2 (tick_0 = 1). Its
//              frequencies come in ± pairs, so r = 2 is really rank one (both are (-1)^τ), and c
//              is 4x the ideal r/2 for large r (W_o absorbs it).
// ε = 1e-5 in both. Resets (native): a reset at (b, t) zeroes the decays at t and restarts the
// stream's tick, so a reset equals a fresh sequence.
//
// Shapes: B batch, T time, D d_model, H heads, d head_dim, η eta, F = η·d, r components.
// State per stream: ṽ "v" [B,H,r,d], k̃ "k" [B,H,r,F], s "s" [B,H,F] in the model's dtype and the
// tick "tick" [B] (i64, the last τ used). The forward runs the three recurrences with the
// linear_scan op (time-major [B,T,H,...], the decays broadcast over r); step() is the recurrence.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rill/mixers/gated_features.h"
#include "rill/mixers/mixer.h"

namespace rill {

enum class ArelitMode { distinct, reference };
ArelitMode parse_arelit_mode(const std::string& name);  // "distinct" or "reference"

struct ArelitConfig {
  int64_t d_model = 128, heads = 4;
  int64_t head_dim = 0;  // 0: d_model / heads
  int64_t eta = 4, r = 4;
  ArelitMode mode = ArelitMode::distinct;
  double eps = 1e-5;
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class ArelitMixer : public Mixer {
 public:
  explicit ArelitMixer(const ArelitConfig& config);

  State init_state(int64_t batch) const override;  // zeros, tick = tick_0
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return "arelit"; }
  bool constant_state() const override { return true; }
  double mixing_flops_per_token(int64_t context) const override;

  const GatedFeatures& features() const { return *features_; }
  const std::vector<double>& frequencies() const { return omega_; }  // ω [r]
  double scale() const { return c_; }                                // c
  int64_t tick0() const { return tick0_; }

  ArelitConfig config;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;
  bool native_resets() const override { return true; }
  Tensor forward_native_resets(const Tensor& x, State* state, const Tensor& resets) override;

 private:
  Tensor forward_impl(const Tensor& x, State* state, const Tensor& resets);
  // cos(ω_l τ) for integer ticks, reduced modulo the frequencies' common period first so that
  // long streams keep full precision: [count, r] in f64.
  std::vector<double> cos_table(const std::vector<int64_t>& ticks) const;
  void check_state(const State& s, int64_t batch) const;
  int64_t head_dim_, period_, tick0_;
  double c_;
  std::vector<double> omega_;
  std::shared_ptr<GatedFeatures> features_;
};

}  // namespace rill
