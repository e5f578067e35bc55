// Contiguous-lane batching for truncated BPTT (the rule is documented in batcher.h).
#include "rill/data/batcher.h"

#include <algorithm>
#include <vector>

namespace rill::data {

Batcher::Batcher(const TokenFile& tokens, int64_t batch_size, int64_t seq_len, uint64_t position)
    : tokens_(&tokens), batch_(batch_size), seq_len_(seq_len), position_(position) {
  RILL_CHECK(batch_size > 0 && seq_len > 0,
             "[data] batcher needs a positive batch size and sequence length, got {} and {}",
             batch_size, seq_len);
  uint64_t n = tokens.size();
  lane_length_ = n / static_cast<uint64_t>(batch_size);
  RILL_CHECK(lane_length_ >= static_cast<uint64_t>(seq_len) + 1,
             "[data] {} has {} tokens: too few for {} lanes of one {}-token segment (it needs at "
             "least {} = batch * (seq_len + 1))",
             tokens.path(), n, batch_size, seq_len,
             static_cast<uint64_t>(batch_size) * static_cast<uint64_t>(seq_len + 1));
  segments_per_epoch_ = (lane_length_ - 1) / static_cast<uint64_t>(seq_len);
}

uint64_t Batcher::lane_offset(int64_t lane, uint64_t position) const {
  uint64_t segment = position % segments_per_epoch_;
  return static_cast<uint64_t>(lane) * lane_length_ + segment * static_cast<uint64_t>(seq_len_);
}

Batch Batcher::next() {
  Batch b;
  b.epoch = position_ / segments_per_epoch_;
  b.segment = position_ % segments_per_epoch_;
  b.reset = b.segment == 0;
  b.inputs = Tensor::empty({batch_, seq_len_}, DType::i64);
  b.targets = Tensor::empty({batch_, seq_len_}, DType::i64);
  int64_t* in = b.inputs.data<int64_t>();
  int64_t* tg = b.targets.data<int64_t>();
  std::vector<int64_t> row(static_cast<size_t>(seq_len_) + 1);
  for (int64_t lane = 0; lane < batch_; ++lane) {
    // One read of T + 1 tokens serves both inputs and the shifted targets.
    tokens_->copy_to(lane_offset(lane, position_), row.size(), row.data());
    std::copy(row.begin(), row.end() - 1, in + lane * seq_len_);
    std::copy(row.begin() + 1, row.end(), tg + lane * seq_len_);
  }
  ++position_;
  return b;
}

}  // namespace rill::data
