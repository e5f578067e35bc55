// DataParallel: one training step's gradient over the global batch, computed as this rank's
// gradient shards (shard_tree.h) and reduced over the ranks (exact_allreduce.h), so that every
// rank ends the step with the same gradient in every parameter's .grad, ready for clipping and
// an identical optimiser step. It also keeps the carried recurrent state, one per local shard.
//
// Shapes: B lanes in the global batch, S shards, N ranks; a shard is B/S lanes, a rank S/N
// shards. The flat gradient is [P + 1] (padded with zeros to padded_length): every parameter's
// gradient in model.parameters() order, then the shard's loss, so that one reduction also gives
// the global mean loss.
//
// The loss of a batch is a mean over its lanes' items (tokens or sequences), equal for every
// lane in every registered task, so the mean over the global batch is the mean of the S shard
// means: the reduced sum is scaled by 1/S, which is exact when S is a power of two.
//
// One shard in the one-process group is the plain step: the loss's backward leaves the gradient
// in place, with no copy (the single-process numbers of earlier versions, bit for bit).
//
// Dropout: with S > 1, shard k draws its masks at counter offset o + k * 2^32 of each generator
// (o: the offset at the step's start) and every generator ends the step at o + S * 2^32, so the
// masks of a shard do not depend on which rank computes it.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "rill/dist/communicator.h"
#include "rill/dist/exact_allreduce.h"
#include "rill/dist/shard_tree.h"
#include "rill/tasks/task.h"

namespace rill::dist {

// Lanes [shard B/S, (shard + 1) B/S) of a batch (inputs and targets are lane-major), in fresh
// storage; items is the batch's / S.
TaskBatch shard_batch(const TaskBatch& batch, int64_t shard, int64_t shards);

class DataParallel {
 public:
  static constexpr uint64_t kShardCounterStride = uint64_t(1) << 32;

  DataParallel(Communicator& comm, SequenceModel& model, const ShardLayout& layout, ReduceMode mode,
               bool carries_state);

  const ShardLayout& layout() const { return layout_; }
  bool plain() const { return plain_; }

  // The carried state of this rank's lanes: fresh, detached (truncated BPTT), from a whole
  // [B, ...] state (a checkpoint's), or gathered whole to rank 0 (collective; empty elsewhere).
  void reset_state();
  void detach_state();
  void set_full_state(const State& full);
  State gather_full_state();

  // Leaves every parameter's .grad = the gradient of the mean loss over the global batch, the
  // same on every rank, and returns that mean loss. Every rank passes the same whole batch.
  double compute_gradients(Task& task, const TaskBatch& batch);

  double reduce_seconds() const { return reducer_.seconds(); }  // in this process
  int64_t reduce_calls() const { return reducer_.calls(); }

 private:
  Communicator& comm_;
  SequenceModel& model_;
  ShardLayout layout_;
  bool carries_, plain_;
  std::vector<Tensor> params_;
  DType dtype_ = DType::f32;
  int64_t flat_size_ = 0;      // P + 1
  std::vector<State> states_;  // [S/N], each [B/S, ...]
  std::unique_ptr<TreeSum> tree_;
  GradientReducer reducer_;
};

}  // namespace rill::dist
