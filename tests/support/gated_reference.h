// Naive f64 references shared by the ReLiT and AReLiT tests: the gated features of an input as
// plain arrays, W_o over per-head outputs, and ReLiT's factorised recurrence written out from
// relit.md 1.2.
#pragma once
#include <vector>

#include "rill/mixers/gated_features.h"

namespace rill::testing {

// The gated features of x as plain arrays, [B,H,T,w] row-major.
struct Features {
  int64_t b, h, t, d, f;
  std::vector<double> phi_k, phi_q, v, beta, gamma;
};
Features features_of(const GatedFeatures& m, const Tensor& x);

// Per-head outputs [B,T,H,d] -> W_o.
Tensor project(const GatedFeatures& m, const std::vector<double>& o, const Features& f);

// ReLiT's factorised recurrence in f64 from zero states: per head
//   C_t = ((1-β)(1-γ)^T) ⊙ C_{t-1} + (β⊙v)(γ⊙φ(k))^T,  s_t = (1-γ) ⊙ s_{t-1} + γ ⊙ φ(k),
//   o = C φ(q) / (s·φ(q) + ε); returns o [B,T,H,d].
std::vector<double> naive_relit(const Features& f, double eps);

}  // namespace rill::testing
