// Clipping by the global gradient norm. The sum of squares is accumulated in double over fixed
// blocks of elements (each block in several independent lanes, so the adds vectorise instead of
// forming one serial chain), the blocks summed in parallel and their partials combined in order:
// the norm is the same bits for any thread count.
#include "rill/optim/clip.h"

#include <cmath>
#include <vector>

#include "rill/core/error.h"

namespace rill::optim {

namespace {

constexpr int64_t kBlock = 1 << 14;  // elements per parallel unit
constexpr int kLanes = 8;            // independent partial sums within a block

template <class T>
double block_sum_of_squares(const T* g, int64_t n) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) lane[l] += double(g[i + l]) * double(g[i + l]);
  for (; i < n; ++i) lane[0] += double(g[i]) * double(g[i]);
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += lane[l];
  return s;
}

template <class T>
double sum_of_squares(const T* g, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b)
    partial[b] = block_sum_of_squares(g + b * kBlock, std::min(kBlock, n - b * kBlock));
  double s = 0;
  for (double p : partial) s += p;
  return s;
}

template <class T>
void scale(T* g, int64_t n, double factor) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) g[i] = T(g[i] * factor);
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  RILL_CHECK(max_norm > 0, "[clip_grad_norm] max_norm must be positive, got {}", max_norm);
  double total = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor c = g.contiguous();
    RILL_DISPATCH_FLOAT(c.dtype(), "clip_grad_norm", T,
                        total += sum_of_squares(c.data<T>(), c.numel()));
  }
  const double norm = std::sqrt(total);
  if (norm > max_norm) {
    const double factor = max_norm / (norm + 1e-6);  // as torch: a tiny epsilon keeps it finite
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      RILL_CHECK(g.is_contiguous(), "[clip_grad_norm] gradient is not contiguous");
      RILL_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", T, scale(g.data<T>(), g.numel(), factor));
    }
  }
  return norm;
}

}  // namespace rill::optim
