// The shard layout's checks and the fixed summation tree (shard_tree.h).
#include "rill/dist/shard_tree.h"

#include "rill/core/error.h"

namespace rill::dist {

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

ShardLayout ShardLayout::make(int64_t batch, int64_t shards, int ranks, int rank, bool exact) {
  RILL_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "[dist] rank {} of {} ranks", rank, ranks);
  RILL_CHECK(shards >= 1, "[train] grad_shards must be at least 1, got {}", shards);
  RILL_CHECK(batch % shards == 0,
             "[train] grad_shards {} does not divide the batch of {} lanes: every shard needs "
             "the same number of lanes",
             shards, batch);
  RILL_CHECK(shards % ranks == 0,
             "[train] {} ranks need grad_shards to be a multiple of {} (each rank holds a whole "
             "block of shards), but it is {}",
             ranks, ranks, shards);
  if (exact) {
    RILL_CHECK(is_power_of_two(shards),
               "[train] the exact reduction needs grad_shards to be a power of two (the fixed "
               "tree over shards), got {}; use \"allreduce\": \"fast\" for other counts",
               shards);
    RILL_CHECK(is_power_of_two(ranks),
               "[train] the exact reduction needs a power-of-two number of ranks (a rank's block "
               "of shards must be a whole subtree), got {} ranks; use 1, 2, 4, ... ranks or "
               "\"allreduce\": \"fast\"",
               ranks);
  }
  return {batch, shards, ranks, rank};
}

namespace {

template <class T>
void add_into_t(T* dst, const T* src, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 18))
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace

void add_into(void* dst, const void* src, int64_t n, DType dtype) {
  RILL_DISPATCH_FLOAT(dtype, "add_into", T,
                      add_into_t(static_cast<T*>(dst), static_cast<const T*>(src), n));
}

Tensor TreeSum::take_buffer() {
  if (!free_.empty()) {
    Tensor t = free_.back();
    free_.pop_back();
    return t;
  }
  return Tensor::empty({count_}, dtype_);
}

Tensor TreeSum::next_leaf() {
  RILL_CHECK(!pending_.defined(), "[dist] TreeSum: next_leaf() twice without commit()");
  pending_ = take_buffer();
  return pending_;
}

void TreeSum::commit() {
  RILL_CHECK(pending_.defined(), "[dist] TreeSum: commit() without next_leaf()");
  stack_.push_back({0, pending_});
  pending_ = Tensor();
  // Two partial sums of equal level are sibling subtrees: the left one (pushed first) takes the
  // right one in, and the pair is one level up.
  while (stack_.size() >= 2 && stack_[stack_.size() - 1].level == stack_[stack_.size() - 2].level) {
    Node right = stack_.back();
    stack_.pop_back();
    Node& left = stack_.back();
    add_into(left.sum.data_ptr(), right.sum.data_ptr(), count_, dtype_);
    ++left.level;
    free_.push_back(right.sum);
  }
}

Tensor TreeSum::result() {
  RILL_CHECK(stack_.size() == 1,
             "[dist] TreeSum: the leaves do not form one tree ({} partial sums left): the number "
             "of shards must be a power of two",
             stack_.size());
  Tensor root = stack_.back().sum;
  stack_.clear();
  free_.push_back(root);  // the caller reads it before the next leaf is taken
  return root;
}

void tree_sum_rows(void* rows, int64_t n, int64_t len, DType dtype) {
  RILL_CHECK(is_power_of_two(n), "[dist] tree_sum_rows over {} rows (not a power of two)", n);
  const int64_t esize = int64_t(dtype_size(dtype));
  char* base = static_cast<char*>(rows);
  for (int64_t step = 1; step < n; step *= 2)
    for (int64_t i = 0; i < n; i += 2 * step)
      add_into(base + i * len * esize, base + (i + step) * len * esize, len, dtype);
}

}  // namespace rill::dist
