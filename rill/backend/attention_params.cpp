// T5 bucketing and its argument checks (backend/attention_params.h).
#include "rill/backend/attention_params.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "rill/core/error.h"

namespace rill {

void check_t5(const char* op, bool bidirectional, int64_t num_buckets, int64_t max_distance) {
  const int64_t per_side = bidirectional ? num_buckets / 2 : num_buckets;
  RILL_CHECK(per_side >= 2, "[{}] num_buckets must be at least {} for {} T5 buckets, got {}", op,
             bidirectional ? 4 : 2, bidirectional ? "bidirectional" : "unidirectional",
             num_buckets);
  RILL_CHECK(max_distance > per_side / 2,
             "[{}] max_distance {} must exceed the {} exact T5 buckets (num_buckets {}, {})", op,
             max_distance, per_side / 2, num_buckets,
             bidirectional ? "bidirectional" : "unidirectional");
}

int64_t t5_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                  int64_t max_distance) {
  check_t5("t5_bucket", bidirectional, num_buckets, max_distance);
  int64_t bucket = 0, n = 0;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative_position < 0) bucket = num_buckets;  // keys after the query: the upper half
    n = relative_position == std::numeric_limits<int64_t>::min()
            ? std::numeric_limits<int64_t>::max()
            : std::abs(relative_position);
  } else {
    n = std::max<int64_t>(relative_position, 0);  // keys after the query share bucket 0
  }
  const int64_t exact = num_buckets / 2;
  if (n < exact) return bucket + n;
  // Logarithmic from exact to max_distance (in double; T5 uses f32, which rounds the same way
  // away from the bucket edges), truncated, then clamped to the last bucket.
  const double frac = std::log(static_cast<double>(n) / static_cast<double>(exact)) /
                      std::log(static_cast<double>(max_distance) / static_cast<double>(exact));
  const double large = static_cast<double>(exact) + frac * static_cast<double>(num_buckets - exact);
  return bucket + std::min(static_cast<int64_t>(std::min(large, 1e18)), num_buckets - 1);
}

}  // namespace rill
