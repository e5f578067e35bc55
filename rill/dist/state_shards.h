// The carried recurrent state cut into the gradient shards' lanes and put back together. A run
// carries one state per shard ([B/S, ...] each, its own storage); a checkpoint holds the whole
// [B, ...] state in the format of a one-process run, so it resumes on any number of ranks and
// with any grad_shards that divides B. Every tensor of a model's state is per stream (dim 0 is
// the lane), except rank-0 tensors (a position counter), which every shard holds alike.
#pragma once
#include <string>
#include <vector>

#include "rill/mixers/state.h"

namespace rill::dist {

// [B, ...] -> parts states of [B/parts, ...] (contiguous copies, without tape).
std::vector<State> split_state(const State& full, int64_t parts);
// The inverse: lanes concatenated in order; the parts must hold the same names, dtypes and
// trailing sizes, and equal rank-0 tensors.
State join_states(const std::vector<State>& parts);

// States as bytes, to send from rank to rank: a JSON header (names, dtypes, shapes), then the
// raw data.
std::string pack_states(const std::vector<State>& states);
std::vector<State> unpack_states(const std::string& bytes);

}  // namespace rill::dist
