// The counter-based generator (Philox): draws as a pure function of (seed, counter).
#include "rill/core/rng.h"

#include <cmath>

namespace rill {

double normal_at(uint64_t seed, uint64_t i) {
  auto r = philox4x32(seed, i);
  double u1 = 1.0 - uniform_f64(r[0], r[1]);  // in (0, 1]: log is finite
  double u2 = uniform_f64(r[2], r[3]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace rill
