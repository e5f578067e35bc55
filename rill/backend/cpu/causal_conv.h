// Fast causal depthwise convolution (ops/causal_conv.h has the definition). Operands as in
// backend/ref/causal_conv.h. Deterministic: dw sums fixed blocks of rows in a fixed order.
#pragma once
#include "rill/core/tensor.h"

namespace rill::cpu {

void causal_conv1d_forward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& y);
void causal_conv1d_backward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& dy,
                            const Tensor& dx, const Tensor& dw, const Tensor& dprev);

}  // namespace rill::cpu
