// The sum over ranks of one flat buffer per rank, either exact (the same bits for any number of
// ranks, given each rank's block sum from shard_tree.h) or fast (the communicator's own
// all-reduce). Both work through the buffer in buckets of at most bucket_elems elements, so the
// scratch memory is bounded (about two buckets) and every message count fits MPI's int.
//
// Exact, per bucket of L elements over N ranks (a reduce-scatter, then an all-gather):
//   1. the bucket is cut into N chunks of C = ceil(L / N) elements (the last padded with 0 in
//      a copy, unless N divides L: the trainer's vectors are padded_length long, so it does);
//   2. alltoall: rank r receives chunk r of every rank's block sum, in rank order ([N, C]);
//   3. rank r sums those N rows with the top of the shard tree (tree_sum_rows), in rank order;
//   4. allgather: every rank receives every rank's summed chunk, so all hold the whole sum.
// Each element is summed once, by one rank, always in the same tree order, so the result does not
// depend on N. The bytes each rank sends are 2 (N-1)/N of the bucket: the same volume as a ring
// all-reduce, and better than a binomial tree reduce plus broadcast (2 log2(N) of the bucket on
// the critical path), while fixing the order as that tree would.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rill/core/tensor.h"
#include "rill/dist/communicator.h"

namespace rill::dist {

enum class ReduceMode { exact, fast };

// A length rounded up to a multiple of 64: a vector this long (zeros in the padding) cuts into
// equal chunks for any power-of-two rank count up to 64, so the exact reduction sends and
// receives it in place, with no padded copy.
int64_t padded_length(int64_t elems);
ReduceMode reduce_mode_from_name(const std::string& name);  // "exact" or "fast"
const char* reduce_mode_name(ReduceMode mode);

class GradientReducer {
 public:
  static constexpr int64_t kDefaultBucketElems = int64_t(1) << 22;  // 16 MiB of f32; 64 | it
  GradientReducer(Communicator& comm, ReduceMode mode, int64_t bucket_elems = kDefaultBucketElems);

  // In place: flat (a contiguous f32 or f64 vector, this rank's block sum) becomes the sum over
  // every rank, identical on every rank.
  void reduce(Tensor& flat);
  double seconds() const { return seconds_; }  // spent in reduce() so far
  int64_t calls() const { return calls_; }

 private:
  Communicator& comm_;
  ReduceMode mode_;
  int64_t bucket_elems_;
  std::vector<char> send_, recv_;  // exact mode's scratch: [N, C] each, reused
  double seconds_ = 0;
  int64_t calls_ = 0;
};

}  // namespace rill::dist
