// Minibatches of examples drawn without replacement, epoch by epoch, in an order fixed by the
// seed: batch p of the run is a pure function of (seed, p), so a checkpoint resumes it by
// position alone. The last examples of an epoch that do not fill a batch are skipped (a
// different set each epoch).
#pragma once
#include <cstdint>
#include <vector>

#include "rill/core/tensor.h"

namespace rill {

class ShuffledBatches {
 public:
  ShuffledBatches(int64_t examples, int64_t batch, uint64_t seed);
  // Indices (i64 [batch]) of the next batch, and advances.
  Tensor next();
  uint64_t position() const { return position_; }
  void set_position(uint64_t position) { position_ = position; }
  int64_t batches_per_epoch() const { return per_epoch_; }

 private:
  const std::vector<int64_t>& order(uint64_t epoch);  // the permutation of one epoch
  int64_t examples_, batch_, per_epoch_;
  uint64_t seed_, position_ = 0;
  uint64_t cached_epoch_ = UINT64_MAX;
  std::vector<int64_t> order_;
};

}  // namespace rill
