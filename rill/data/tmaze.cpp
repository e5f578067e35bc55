// T-Maze episode generation (see tmaze.h).
#include "rill/data/tmaze.h"

#include "rill/core/error.h"
#include "rill/core/rng.h"

namespace rill::data {

void check_tmaze_corridor(int64_t corridor) {
  RILL_CHECK(corridor >= kTMazeMinCorridor && corridor <= kTMazeMaxCorridor,
             "[config] the T-Maze task: \"corridor\" is {}; it must be between {} and {} steps",
             corridor, kTMazeMinCorridor, kTMazeMaxCorridor);
}

uint64_t tmaze_stream_key(uint64_t seed, std::string_view split) {
  uint64_t which = 0;
  if (split == "train")
    which = 1;
  else if (split == "valid")
    which = 2;
  else if (split == "test")
    which = 3;
  else
    fail("[data] tmaze: unknown split \"{}\" (expected train, valid or test)", split);
  // A Philox block of (seed, split) as the key: the three streams of one seed are unrelated,
  // and so are those of neighbouring seeds.
  const auto r = philox4x32(seed ^ 0x7a3e5eedULL, which);
  return (uint64_t(r[0]) << 32) | r[1];
}

LabelledSplit tmaze_episodes(int64_t corridor, uint64_t key, int64_t first, int64_t count) {
  check_tmaze_corridor(corridor);
  RILL_CHECK(first >= 0 && count > 0, "[data] tmaze: bad episode range first {} count {}", first,
             count);
  const int64_t n = corridor, f = kTMazeFeatures;
  LabelledSplit s;
  s.x = Tensor::zeros({count, n, f}, DType::f32);
  s.y = Tensor::empty({count}, DType::i64);
  float* x = s.x.data<float>();
  int64_t* y = s.y.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t base = uint64_t(first + i) * uint64_t(n);
    float* ep = x + i * n * f;
    const int64_t cue = philox4x32(key, base)[0] & 1;  // counter t = 0: the cue alone
    y[i] = cue;
    ep[0] = cue == 1 ? 1.f : 0.f;  // up [0, 1] is class 0, down [1, 0] class 1
    ep[1] = cue == 0 ? 1.f : 0.f;
    for (int64_t t = 0; t < n; ++t) {
      float* o = ep + t * f;
      const uint64_t gray = uint64_t(t) ^ (uint64_t(t) >> 1);
      for (int j = 0; j < 8; ++j) o[2 + j] = float((gray >> (7 - j)) & 1);
      if (t == 0) continue;  // no distractors at the start
      const uint32_t bits = philox4x32(key, base + uint64_t(t))[0];
      for (int j = 0; j < 6; ++j) o[10 + j] = float((bits >> j) & 1);
    }
  }
  return s;
}

}  // namespace rill::data
