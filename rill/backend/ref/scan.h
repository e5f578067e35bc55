// Reference scan kernels along one dim (cumsum, logcumsumexp and its fused backward).
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::ref {

// Inputs and outputs may have any strides; every operand has x's shape. reverse scans from the
// last position to the first.
void cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out);
void logcumsumexp(const Tensor& x, int64_t dim, bool reverse, const Tensor& out);
// dx from x, y = logcumsumexp(x) and dy: with t_j = dy_j + exp(y_j - y_next) t_next (next in scan
// order toward the end), dx_j = exp(x_j - y_j) t_j.
void logcumsumexp_backward(const Tensor& x, const Tensor& y, const Tensor& dy, int64_t dim,
                           bool reverse, const Tensor& dx);

}  // namespace rill::ref
