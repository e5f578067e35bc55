// Counter-based random numbers (Philox-4x32-10): element i of a draw depends only on
// (seed, offset + i), so results are identical whatever the thread count or split.
#pragma once
#include <array>
#include <cstdint>

namespace rill {

// Inline so that loops drawing one value per element vectorise and pay no call.
inline std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0x9E3779B9u, c3 = 0x85EBCA6Bu;  // fixed high counter words
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = static_cast<uint32_t>(p1);
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

// Uniform in [0, 1) from 32 bits (float) or 53 bits built from two words (double).
inline float uniform_f32(uint32_t r) { return (r >> 8) * (1.0f / 16777216.0f); }
inline double uniform_f64(uint32_t hi, uint32_t lo) {
  return ((static_cast<uint64_t>(hi) << 21) ^ (lo >> 11)) * (1.0 / 9007199254740992.0);
}
// Standard normal for counter position i (Box-Muller on one Philox block).
inline double uniform_at(uint64_t seed, uint64_t i) {  // in [0, 1)
  auto r = philox4x32(seed, i);
  return uniform_f64(r[0], r[1]);
}
double normal_at(uint64_t seed, uint64_t i);

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
