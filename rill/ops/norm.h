// The fused norms over the last dim, LayerNorm and RMSNorm, with hand-written backward kernels.
#pragma once
#include "rill/core/tensor.h"

namespace rill {

// Over the last dim; weight and bias [D] are optional (pass Tensor() for none). Saves only mean
// and rstd per row.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// x * rsqrt(mean(x^2) + eps) * weight; weight optional; saves only rstd per row.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

}  // namespace rill
