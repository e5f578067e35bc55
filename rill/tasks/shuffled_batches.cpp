// Seeded epoch permutations (Fisher-Yates over a counter-based generator).
#include "rill/tasks/shuffled_batches.h"

#include <numeric>

#include "rill/core/rng.h"

namespace rill {

ShuffledBatches::ShuffledBatches(int64_t examples, int64_t batch, uint64_t seed)
    : examples_(examples),
      batch_(batch),
      per_epoch_(batch > 0 ? examples / batch : 0),
      seed_(seed) {
  RILL_CHECK(batch > 0 && per_epoch_ > 0,
             "[task] {} training examples are too few for one batch of {}; lower \"batch\"",
             examples, batch);
}

const std::vector<int64_t>& ShuffledBatches::order(uint64_t epoch) {
  if (epoch == cached_epoch_) return order_;
  order_.resize(static_cast<size_t>(examples_));
  std::iota(order_.begin(), order_.end(), 0);
  // Philox draws at (seed, epoch * examples + i): the same order on any machine.
  const uint64_t base = epoch * static_cast<uint64_t>(examples_);
  for (int64_t i = examples_ - 1; i > 0; --i) {
    const double u = uniform_at(seed_ ^ 0x5eedba7c4e5ULL, base + static_cast<uint64_t>(i));
    const int64_t j = std::min<int64_t>(i, static_cast<int64_t>(u * double(i + 1)));
    std::swap(order_[i], order_[j]);
  }
  cached_epoch_ = epoch;
  return order_;
}

Tensor ShuffledBatches::next() {
  const uint64_t epoch = position_ / static_cast<uint64_t>(per_epoch_);
  const int64_t first = static_cast<int64_t>(position_ % per_epoch_) * batch_;
  const std::vector<int64_t>& o = order(epoch);
  std::vector<int64_t> idx(o.begin() + first, o.begin() + first + batch_);
  ++position_;
  return Tensor::from_vector(idx, {batch_});
}

}  // namespace rill
