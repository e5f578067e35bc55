// Dropout: fixed chunks in parallel; each chunk draws its mask bytes (Philox, scalar) and then
// applies them in a vectorisable loop. Element i's mask depends only on (seed, offset + i).
#include "rill/backend/cpu/dropout.h"

#include <algorithm>

#include "rill/backend/cpu/copy.h"
#include "rill/backend/ref/dropout.h"

namespace rill::cpu {

namespace {

constexpr int64_t kChunk = 4096;
constexpr int64_t kParallelMin = 32768;

template <class T>
void dropout_impl(const T* x, T* y, int64_t n, double p, uint64_t seed, uint64_t offset) {
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk, len = std::min(kChunk, n - begin);
    unsigned char keep[kChunk];
    for (int64_t i = 0; i < len; ++i)
      keep[i] = dropout_keep(seed, offset + static_cast<uint64_t>(begin + i), p);
    const T* xr = x + begin;
    T* yr = y + begin;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) yr[i] = keep[i] ? xr[i] * scale : T(0);
  }
}

}  // namespace

void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out) {
  RILL_CHECK(out.is_contiguous() && out.shape() == x.shape(),
             "[dropout] cpu kernel needs a contiguous output of shape {}, got {}",
             shape_str(x.shape()), shape_str(out.shape()));
  Tensor xc = x;
  if (!x.is_contiguous()) {
    xc = Tensor::empty(x.shape(), x.dtype());
    copy(x, xc);
  }
  RILL_DISPATCH_FLOAT(x.dtype(), "dropout", T,
                      dropout_impl<T>(xc.data<T>(), out.data<T>(), x.numel(), p, seed, offset));
}

}  // namespace rill::cpu
