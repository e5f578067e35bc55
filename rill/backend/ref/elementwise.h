// Reference elementwise kernels. Every operand has the output's shape (broadcast operands
// arrive as expanded views); outputs are written, never read.
#pragma once
#include "rill/backend/elementwise_math.h"
#include "rill/core/tensor.h"

namespace rill::ref {

void unary(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& out);
// dx = dy * op'(x), where y = op(x) is the saved output.
void unary_backward(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& y,
                    const Tensor& dy, const Tensor& dx);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
// out = cond != 0 ? a : b; cond may have any dtype.
void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);

}  // namespace rill::ref
