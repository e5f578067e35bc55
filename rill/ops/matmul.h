// Matrix product with NumPy/PyTorch matmul semantics.
#pragma once
#include "rill/core/tensor.h"

namespace rill {

// [..., M, K] x [..., K, N] -> [..., M, N], batch dims broadcast. A rank-1 left operand [K] is
// treated as [1, K] and a rank-1 right operand [K] as [K, 1], the added dim then removed (so
// vector x vector is a rank-0 dot product). f32 or f64, both operands of one dtype.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace rill
