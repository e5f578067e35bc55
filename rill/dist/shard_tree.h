// The fixed summation tree over gradient shards, which makes N ranks give the same bits as one
// process. The global batch of B lanes is split into S gradient shards (S a power of two, the
// run's "grad_shards"); shard k holds lanes [k B/S, (k+1) B/S) and its gradient is computed on
// its own. The shard gradients are summed by one binary tree over shard index:
//   S = 4:  (g0 + g1) + (g2 + g3)
// A rank of N (N a power of two dividing S) holds the contiguous block of S/N shards
// [rank S/N, (rank+1) S/N): a whole subtree. It sums its block with the same tree, and the ranks
// combine their block sums with the top of the same tree (exact_allreduce.h). Floating-point
// addition is deterministic once its operands and their order are fixed, so every rank count
// that divides S gives the sum one process gets with S shards, in f32 and f64 alike.
#pragma once
#include <cstdint>
#include <vector>

#include "rill/core/tensor.h"

namespace rill::dist {

bool is_power_of_two(int64_t n);

// Where this process's lanes and shards lie in the global batch.
struct ShardLayout {
  int64_t batch = 1;   // B: lanes of the global batch
  int64_t shards = 1;  // S: gradient shards of the global batch
  int ranks = 1;       // N
  int rank = 0;

  // Checks B % S == 0 and S % N == 0, and, for the exact reduction, that S and N are powers of
  // two; the errors name the values and what would fit.
  static ShardLayout make(int64_t batch, int64_t shards, int ranks, int rank, bool exact);
  int64_t local_shards() const { return shards / ranks; }
  int64_t first_shard() const { return rank * local_shards(); }
  int64_t lanes_per_shard() const { return batch / shards; }
};

// dst[i] += src[i] for i < n: one rounding per element, so any vectorisation or thread split
// gives the same bits.
void add_into(void* dst, const void* src, int64_t n, DType dtype);

// Sums buffers of `count` elements handed in shard order by the tree above, as a binary
// counter: leaf 2j+1 joins leaf 2j, then pairs of pairs join, so at most log2(leaves) + 2
// buffers are live, whatever the number of leaves. Buffers are kept for the next step (memory is
// reused, never re-faulted).
class TreeSum {
 public:
  TreeSum(int64_t count, DType dtype) : count_(count), dtype_(dtype) {}
  // The buffer the next leaf is written into ([count], uninitialised); commit() adds it in.
  Tensor next_leaf();
  void commit();
  // After a power-of-two number of commits: the root ([count]); the tree is then empty again.
  Tensor result();
  int64_t count() const { return count_; }
  DType dtype() const { return dtype_; }

 private:
  struct Node {
    int level;
    Tensor sum;
  };
  Tensor take_buffer();
  int64_t count_;
  DType dtype_;
  std::vector<Node> stack_;   // partial sums, levels strictly decreasing from the bottom
  std::vector<Tensor> free_;  // buffers to reuse
  Tensor pending_;            // handed out by next_leaf, not yet committed
};

// In place over rows [n, len] (n a power of two): row 0 = the tree sum of the rows in order,
// ((r0 + r1) + (r2 + r3)) ... The other rows are overwritten.
void tree_sum_rows(void* rows, int64_t n, int64_t len, DType dtype);

}  // namespace rill::dist
