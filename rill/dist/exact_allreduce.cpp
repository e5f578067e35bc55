// The exact and fast reductions over ranks (exact_allreduce.h).
#include "rill/dist/exact_allreduce.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "rill/core/error.h"
#include "rill/dist/shard_tree.h"

namespace rill::dist {

ReduceMode reduce_mode_from_name(const std::string& name) {
  if (name == "exact") return ReduceMode::exact;
  if (name == "fast") return ReduceMode::fast;
  fail("[train] \"allreduce\" must be \"exact\" or \"fast\", got \"{}\"", name);
}

const char* reduce_mode_name(ReduceMode mode) {
  return mode == ReduceMode::exact ? "exact" : "fast";
}

int64_t padded_length(int64_t elems) { return (elems + 63) / 64 * 64; }

GradientReducer::GradientReducer(Communicator& comm, ReduceMode mode, int64_t bucket_elems)
    : comm_(comm), mode_(mode), bucket_elems_(bucket_elems) {
  RILL_CHECK(bucket_elems >= 1 && bucket_elems <= (int64_t(1) << 30),
             "[dist] bucket of {} elements: between 1 and 2^30", bucket_elems);
  RILL_CHECK(mode == ReduceMode::fast || is_power_of_two(comm.size()),
             "[dist] the exact reduction needs a power-of-two number of ranks, got {}",
             comm.size());
}

void GradientReducer::reduce(Tensor& flat) {
  RILL_CHECK(flat.defined() && flat.dim() == 1 && flat.is_contiguous(),
             "[dist] reduce takes a contiguous vector");
  const DType dtype = flat.dtype();
  const int64_t esize = element_bytes(dtype, "reduce");
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = comm_.size(), total = flat.numel();
  char* data = static_cast<char*>(flat.data_ptr());
  for (int64_t off = 0; off < total; off += bucket_elems_) {
    const int64_t len = std::min(bucket_elems_, total - off);
    char* bucket = data + off * esize;
    if (mode_ == ReduceMode::fast) {
      comm_.allreduce_sum(bucket, len, dtype);
      continue;
    }
    const int64_t chunk = (len + n - 1) / n;  // C
    const size_t bytes = size_t(n * chunk * esize);
    if (recv_.size() < bytes) recv_.resize(bytes);
    if (len % n == 0) {
      // The bucket is [N, C] as it lies: no copies.
      comm_.alltoall(bucket, recv_.data(), chunk, dtype);
      tree_sum_rows(recv_.data(), n, chunk, dtype);  // row 0: my chunk, summed over ranks
      comm_.allgather(recv_.data(), bucket, chunk, dtype);
      continue;
    }
    // [N, C] with the tail padded by zeros (0 + x = x exactly, and the pad is never read back).
    if (send_.size() < bytes) send_.resize(bytes);
    std::memcpy(send_.data(), bucket, size_t(len * esize));
    std::memset(send_.data() + len * esize, 0, bytes - size_t(len * esize));
    comm_.alltoall(send_.data(), recv_.data(), chunk, dtype);
    tree_sum_rows(recv_.data(), n, chunk, dtype);
    comm_.allgather(recv_.data(), send_.data(), chunk, dtype);
    std::memcpy(bucket, send_.data(), size_t(len * esize));
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++calls_;
}

}  // namespace rill::dist
