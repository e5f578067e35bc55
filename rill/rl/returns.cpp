// Lambda-returns and generalised advantage estimation (see returns.h).
#include "rill/rl/returns.h"

#include "rill/core/error.h"

namespace rill::rl {

namespace {
void check_sizes(int64_t lanes, int64_t steps, const std::vector<float>& rewards,
                 const std::vector<uint8_t>& dones, const std::vector<float>& values,
                 const std::vector<float>& bootstrap, double gamma, double lambda) {
  const size_t n = size_t(lanes * steps);
  RILL_CHECK(lanes > 0 && steps > 0 && rewards.size() == n && dones.size() == n &&
                 values.size() == n && bootstrap.size() == size_t(lanes),
             "[rl] returns over {} lanes x {} steps need {} rewards, dones and values and {} "
             "bootstrap values; got {}, {}, {}, {}",
             lanes, steps, n, lanes, rewards.size(), dones.size(), values.size(), bootstrap.size());
  RILL_CHECK(gamma >= 0 && gamma <= 1 && lambda >= 0 && lambda <= 1,
             "[rl] gamma {} and lambda {} must be in [0, 1]", gamma, lambda);
}
}  // namespace

std::vector<double> lambda_returns(int64_t lanes, int64_t steps, const std::vector<float>& rewards,
                                   const std::vector<uint8_t>& dones,
                                   const std::vector<float>& values,
                                   const std::vector<float>& bootstrap, double gamma,
                                   double lambda) {
  check_sizes(lanes, steps, rewards, dones, values, bootstrap, gamma, lambda);
  std::vector<double> g(rewards.size());
  for (int64_t n = 0; n < lanes; ++n) {
    double next_g = bootstrap[n], next_v = bootstrap[n];
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t i = n * steps + t;
      const double discount = dones[i] ? 0.0 : gamma;
      g[i] = rewards[i] + discount * ((1 - lambda) * next_v + lambda * next_g);
      next_g = g[i], next_v = values[i];
    }
  }
  return g;
}

std::vector<double> gae(int64_t lanes, int64_t steps, const std::vector<float>& rewards,
                        const std::vector<uint8_t>& dones, const std::vector<float>& values,
                        const std::vector<float>& bootstrap, double gamma, double lambda) {
  check_sizes(lanes, steps, rewards, dones, values, bootstrap, gamma, lambda);
  std::vector<double> a(rewards.size());
  for (int64_t n = 0; n < lanes; ++n) {
    double next_a = 0, next_v = bootstrap[n];
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t i = n * steps + t;
      const double live = dones[i] ? 0.0 : 1.0;
      const double delta = rewards[i] + gamma * live * next_v - values[i];
      a[i] = delta + gamma * lambda * live * next_a;
      next_a = a[i], next_v = values[i];
    }
  }
  return a;
}

}  // namespace rill::rl
