// Counter-based random numbers (Philox-4x32-10): element i of a draw depends only on
// (seed, offset + i), so results are identical whatever the thread count or split.
#pragma once
#include <array>
#include <cstdint>

namespace rill {

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter);

// Uniform in [0, 1) from 32 bits (float) or 53 bits built from two words (double).
inline float uniform_f32(uint32_t r) { return (r >> 8) * (1.0f / 16777216.0f); }
inline double uniform_f64(uint32_t hi, uint32_t lo) {
  return ((static_cast<uint64_t>(hi) << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
}
// Standard normal for counter position i (Box-Muller on one Philox block).
double normal_at(uint64_t seed, uint64_t i);
double uniform_at(uint64_t seed, uint64_t i);  // in [0, 1)

// A seed plus a running offset: each draw of n values consumes n counters. Its two numbers are
// the whole state (checkpoints save them).
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  // Reserves n counters and returns the first; callers use (seed(), first + i).
  uint64_t advance(uint64_t n) {
    uint64_t first = offset_;
    offset_ += n;
    return first;
  }

 private:
  uint64_t seed_ = 0;
  uint64_t offset_ = 0;
};

}  // namespace rill
