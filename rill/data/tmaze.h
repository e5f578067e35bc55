// T-Maze episodes as labelled sequences, generated from a seed (nothing to download): the
// AGaLiTe "tmazev2" observation (SimplerTMazeWDistractors, relit.md section 2) walked down the
// corridor to the junction, where the decision is the class. It is the memory diagnostic of
// recurrent transformers for RL, turned into sequence classification: the answer is shown once,
// at t = 0, and asked for at the last step, corridor - 1 steps later.
//
// One episode of corridor N is T = N observations of 16 features in {0, 1}, at positions
// p = t = 0 .. N-1 (the junction is p = N-1, as in AGaLiTe's corridor_len):
//   features 0-1   the cue, at t = 0 only (zero after): up = [0, 1] (class 0), down = [1, 0]
//                  (class 1)
//   features 2-9   the low 8 bits of the Gray code of p, most significant first (a corridor
//                  longer than 256 wraps: the decision is always at the last step, so nothing
//                  needs the absolute position)
//   features 10-15 six random distractor bits, zero at t = 0
// The label is the cue. Episode e of a stream draws from Philox at (key, e * N + t): the cue
// at t = 0 and the distractors at t >= 1 use different counters, so nothing after t = 0 depends
// on the label. Train, valid and test are separate streams whose keys derive from one seed and
// the split's name.
#pragma once
#include <cstdint>
#include <string_view>

#include "rill/data/labelled.h"

namespace rill::data {

constexpr int64_t kTMazeFeatures = 16;
constexpr int64_t kTMazeClasses = 2;
constexpr int64_t kTMazeMinCorridor = 10, kTMazeMaxCorridor = 1000;

// Throws, naming the value and the accepted range, unless 10 <= corridor <= 1000.
void check_tmaze_corridor(int64_t corridor);

// The key of a split's stream: "train", "valid" or "test" (others are refused).
uint64_t tmaze_stream_key(uint64_t seed, std::string_view split);

// Episodes first .. first+count-1 of the stream `key`: x f32 [count, N, 16], y i64 [count].
LabelledSplit tmaze_episodes(int64_t corridor, uint64_t key, int64_t first, int64_t count);

}  // namespace rill::data
