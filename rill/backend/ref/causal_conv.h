// Reference causal depthwise convolution (ops/causal_conv.h has the definition): plain loops.
// Every operand is contiguous; prev and dprev may be undefined (zeros / not wanted).
#pragma once
#include "rill/core/tensor.h"

namespace rill::ref {

void causal_conv1d_forward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& y);
// dx[b,s] = sum_j w[j] dy[b,s+j];  dprev likewise for s < 0;  dw[j] = sum_{b,t} dy[b,t] xp[b,t-j].
void causal_conv1d_backward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& dy,
                            const Tensor& dx, const Tensor& dw, const Tensor& dprev);

}  // namespace rill::ref
