// The actor-critic losses over M samples (rollout steps flattened, lanes x time):
//   logits [M, A] of the policy now, values [M] of the critic now, actions [M] i64 taken,
//   advantages [M] and returns [M] (targets, no gradient), old_log_probs [M] of the policy that
//   acted (PPO).
// A2C (the AGaLiTe T-Maze recipe):
//   L = -mean(log pi(a|s) A) + vf_coef * 0.5 * mean((V - G)^2) - ent_coef * mean(H(pi))
// PPO (Schulman et al. 2017), the clipped surrogate:
//   ratio = exp(log pi(a|s) - log pi_old(a|s))
//   L = -mean(min(ratio A, clip(ratio, 1 - eps, 1 + eps) A)) + vf_coef * 0.5 * mean((V - G)^2)
//       - ent_coef * mean(H(pi))
// Both return the total (a scalar on the tape, in the logits' dtype) and its parts as numbers.
#pragma once
#include "rill/core/tensor.h"

namespace rill::rl {

struct PolicyLoss {
  Tensor total;
  double policy = 0, value = 0, entropy = 0;
  double clip_fraction = 0;  // PPO: the fraction of samples whose ratio was clipped
  double approx_kl = 0;      // PPO: mean(old log pi - log pi), a drift check
};

struct LossCoefficients {
  double vf_coef = 0.5, ent_coef = 0.01;
  double clip = 0.2;  // PPO's epsilon
};

PolicyLoss a2c_loss(const Tensor& logits, const Tensor& values, const Tensor& actions,
                    const Tensor& advantages, const Tensor& returns, const LossCoefficients& c);

PolicyLoss ppo_loss(const Tensor& logits, const Tensor& values, const Tensor& actions,
                    const Tensor& old_log_probs, const Tensor& advantages, const Tensor& returns,
                    const LossCoefficients& c);

}  // namespace rill::rl
