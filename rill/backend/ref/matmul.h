// Reference batched matrix product: the naive triple loop that the cpu kernel is tested against.
#pragma once
#include "rill/core/tensor.h"

namespace rill::ref {

// out[..., M, N] = a[..., M, K] x b[..., K, N]. All three have the same rank (>= 2) and batch
// shape (broadcast operands arrive as expanded views); any strides. out is written, never read.
void matmul(const Tensor& a, const Tensor& b, const Tensor& out);

}  // namespace rill::ref
