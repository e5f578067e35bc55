// Batched stepping of independent streams (`rill serve`'s sessions that generate at the same
// moment): their states live side by side in one batched state of B slots, and one step of the
// model's tight stepper advances all of them, so every weight matrix is read once per token for
// all streams (one GEMM per projection) instead of once per stream.
//
// Slots: B is a power of two (a stepper is built once per size and kept); a stream that joins
// takes a free slot (the batch doubles when none is free) and its state is copied in; one that
// leaves gets its slot's state copied back; the batch halves when at most a quarter is used.
// Free slots step along on dummy input and are never read. A model whose state grows with the
// context (a K/V cache) cannot share a batch, since its streams' states differ in shape: each of
// its streams then steps alone.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "rill/models/sequence_model.h"
#include "rill/train/generate.h"
#include "rill/train/sampler.h"

namespace rill::serve {

class BatchedStreams {
 public:
  BatchedStreams(SequenceModel& model, WeightFormat format, ContextPolicy policy);

  // The stream joins (its state moves into the batch until it leaves); returns its handle, which
  // stays valid until it leaves. The stream must outlive its membership.
  int join(Stream* stream, const SamplerOptions& opt);
  // The stream leaves: its state is written back into it.
  void leave(int handle);

  // One token for every member: feeds each its pending token and samples the next, which
  // becomes pending. Returns (handle, token) for every member.
  std::vector<std::pair<int, int64_t>> step();

  int64_t members() const { return int64_t(members_.size()); }
  int64_t capacity() const { return capacity_; }  // slots of the batch (0 when stepping alone)
  bool batched() const { return batched_; }

 private:
  struct Member {
    Stream* stream = nullptr;
    SamplerOptions opt;
    int64_t slot = -1;  // its row of the batch (batched only)
  };
  ModelStepper& stepper(int64_t batch);  // kept for the last few sizes used
  void resize(int64_t capacity);  // moves the members into the first rows of `capacity` slots

  SequenceModel& model_;
  WeightFormat format_;
  ContextPolicy policy_;
  bool batched_;
  // By batch size, the most recently used last; each holds its own packed weights (12 MiB for
  // the default model), so only a few are kept.
  std::vector<std::pair<int64_t, std::unique_ptr<ModelStepper>>> steppers_;
  State batch_;                    // every tensor [capacity, ...]
  std::map<int, Member> members_;  // by handle
  std::vector<int> slots_;         // [capacity]: the handle in each row, -1 when free
  int next_handle_ = 0;
  int64_t capacity_ = 0;
};

}  // namespace rill::serve
