// Return targets of actor-critic training over a rollout of N lanes (environment copies) by T
// steps, every array [N, T] row-major (lane n's step t at n*T + t):
//   rewards r_t, dones d_t (the episode ended with step t: nothing after it is bootstrapped
//   through it), values V(s_t) of the observations the actions were taken from, and
//   bootstrap [N] = V(s_T), the value of the observation after the last step.
// lambda_returns is rlax.lambda_returns (the AGaLiTe A2C target):
//   G_t = r_t + gamma (1 - d_t) ((1 - lambda) V(s_{t+1}) + lambda G_{t+1}),  G_{T} = V(s_T)
// gae is generalised advantage estimation (Schulman et al. 2016, the PPO target):
//   delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t)
//   A_t = delta_t + gamma lambda (1 - d_t) A_{t+1}
// and G_t = A_t + V(s_t) (the two agree; tested). Computed in double.
#pragma once
#include <cstdint>
#include <vector>

namespace rill::rl {

std::vector<double> lambda_returns(int64_t lanes, int64_t steps, const std::vector<float>& rewards,
                                   const std::vector<uint8_t>& dones,
                                   const std::vector<float>& values,
                                   const std::vector<float>& bootstrap, double gamma,
                                   double lambda);

std::vector<double> gae(int64_t lanes, int64_t steps, const std::vector<float>& rewards,
                        const std::vector<uint8_t>& dones, const std::vector<float>& values,
                        const std::vector<float>& bootstrap, double gamma, double lambda);

}  // namespace rill::rl
