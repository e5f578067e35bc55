// Batches for truncated backpropagation through time over contiguous segments of one token
// stream, so that recurrent state can be carried from one segment to the next.
//
// The stream of N tokens is cut into B lanes of L = floor(N / B) tokens; lane b is
// [b * L, b * L + L) (the last N mod B tokens are never used). Segment s of an epoch gives, for
// each lane, inputs lane[s*T, s*T + T) and targets lane[s*T + 1, s*T + T + 1), so segment s + 1
// starts exactly where segment s ended. An epoch has S = floor((L - 1) / T) segments; after the
// last one every lane wraps to its own start (the (L - 1) mod T tokens at each lane's end are
// skipped). The first segment of each epoch has `reset` set: the stream jumps there, so carried
// state should be reset.
//
// The position is the number of segments handed out so far (epoch = position / S); saving it and
// calling set_position later resumes the exact sequence of batches.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"
#include "rill/data/token_file.h"

namespace rill::data {

struct Batch {
  Tensor inputs;   // [B, T] i64
  Tensor targets;  // [B, T] i64: the next token after each input
  uint64_t epoch = 0;
  uint64_t segment = 0;  // within the epoch
  bool reset = false;    // first segment of an epoch: do not carry state into it
};

class Batcher {
 public:
  // `tokens` must outlive the batcher. Throws when the stream is too short for one segment
  // (it needs N >= B * (T + 1)).
  Batcher(const TokenFile& tokens, int64_t batch_size, int64_t seq_len, uint64_t position = 0);

  Batch next();
  uint64_t position() const { return position_; }
  void set_position(uint64_t position) { position_ = position; }

  int64_t batch_size() const { return batch_; }
  int64_t seq_len() const { return seq_len_; }
  uint64_t lane_length() const { return lane_length_; }
  uint64_t segments_per_epoch() const { return segments_per_epoch_; }
  // Token index in the stream of lane b's first input in the segment at `position`.
  uint64_t lane_offset(int64_t lane, uint64_t position) const;

 private:
  const TokenFile* tokens_;
  int64_t batch_;
  int64_t seq_len_;
  uint64_t lane_length_;
  uint64_t segments_per_epoch_;
  uint64_t position_;
};

}  // namespace rill::data
