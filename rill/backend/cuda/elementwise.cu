// Hand-written elementwise CUDA kernels (built with RILL_CUDA=ON). add_f32 is the first: it
// proves the nvcc toolchain end to end alongside the cuBLAS path in cuda.cpp.
#include <algorithm>
#include <string>

#include "rill/backend/cuda/check.h"
#include "rill/backend/cuda/cuda.h"

namespace rill::cuda {

namespace {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU several times over; the grid-stride loop covers the rest,
// so n beyond 2^31 needs no special case.
constexpr int64_t kMaxBlocks = 65536;

// No __restrict__: out may alias a or b (in-place add), which restrict would make undefined.
__global__ void add_f32_kernel(const float* a, const float* b, float* out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = a[i] + b[i];
}

}  // namespace

void add_f32(const float* a, const float* b, float* out, int64_t n) {
  if (n < 0) detail::throw_error("[cuda.add_f32] n must be >= 0, got " + std::to_string(n));
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks);
  add_f32_kernel<<<static_cast<unsigned>(blocks), kThreads>>>(a, b, out, n);
  // A launch reports configuration errors only through the last-error slot.
  detail::check(cudaGetLastError(), "add_f32_kernel launch");
}

}  // namespace rill::cuda
