// Fast scan kernels along one dim (cumsum, logcumsumexp and its fused backward): parallel over
// the other dims, each line scanned sequentially, so results never depend on the thread count.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::cpu {

// Inputs may have any strides (non-contiguous ones are copied first); out and dx must be
// contiguous with x's shape. reverse scans from the last position to the first.
void cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out);
void logcumsumexp(const Tensor& x, int64_t dim, bool reverse, const Tensor& out);
// dx from x, y = logcumsumexp(x) and dy (see ref::logcumsumexp_backward for the recurrence).
void logcumsumexp_backward(const Tensor& x, const Tensor& y, const Tensor& dy, int64_t dim,
                           bool reverse, const Tensor& dx);

}  // namespace rill::cpu
