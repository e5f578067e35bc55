// Parameters of the attention kernels, shared by the op and both backends (which include no
// ops/ header): the options struct and T5's relative-position bucketing.
#pragma once
#include <cstdint>

namespace rill {

struct AttentionOptions {
  bool causal = true;
  int64_t q_offset = 0;  // queries continue a prefix: query i sits at absolute position i +
                         // q_offset, key j at j; causal: key j visible iff j <= i + q_offset
  int64_t window = 0;    // > 0: sliding window, key j visible only if j > i + q_offset - window
                         // (so at most `window` keys incl. itself)
  double scale = 0;      // 0 means 1/sqrt(head dim)
  int64_t num_buckets = 32, max_distance = 128;  // T5 relative bias parameters (used when
                                                 // rel_bias is given)
};

// T5's bucketing of a relative position (Raffel et al. 2020), relative_position = query pos - key
// pos. Unidirectional (for causal attention): positions <= 0 share bucket 0. Bidirectional: half
// the buckets for keys in the past, half (offset by num_buckets / 2) for keys in the future.
// Within each half, distances below half of it are exact and the rest logarithmic up to
// max_distance, clamped at the half's last bucket.
int64_t t5_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                  int64_t max_distance);

// Refuses T5 settings with too few buckets for the direction or a max_distance inside the exact
// range; `op` names the caller in the message.
void check_t5(const char* op, bool bidirectional, int64_t num_buckets, int64_t max_distance);

}  // namespace rill
