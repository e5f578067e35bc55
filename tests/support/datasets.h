// Small data sets made on the fly and prepared like the real ones, for the tasks' tests: a
// learnable labelled set and a noisy sine series.
#pragma once
#include <string>

namespace rill::testing {

// 1,200 sequences of 12 steps of 4 features in [0, 1], as the labelled set `name` under dir:
// step 0 is the one-hot of the class, the other steps are noise in [0, 0.3]. Chance is 25%.
void prepare_cue_set(const std::string& dir, const std::string& name = "cue");

// `length` steps of sin(2 pi t / 24) + N(0, 0.1^2), as the series `name` under dir: season 24,
// suggested horizon 6.
void prepare_sine(const std::string& dir, const std::string& name = "sine", int length = 2000);

}  // namespace rill::testing
