// Reference kernels of the fused norms over the last dim: LayerNorm and RMSNorm, forward and
// backward. Naive loops.
#pragma once
#include "rill/core/tensor.h"

namespace rill::ref {

// x, y contiguous [rows, D]; weight and bias contiguous [D], or undefined for none.
// y = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps) (biased variance);
// writes mean and rstd, contiguous [rows].
void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& rstd);
// From the saved mean and rstd: writes dx [rows, D], dweight [D] and dbias [D], each only when
// it is defined (dweight and dbias are summed over rows).
void layer_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias);

// y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps); weight [D] or undefined; writes rstd.
void rms_norm_forward(const Tensor& x, const Tensor& weight, double eps, const Tensor& y,
                      const Tensor& rstd);
// Writes dx [rows, D] and dweight [D], each only when it is defined.
void rms_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& rstd, const Tensor& dy,
                       const Tensor& dx, const Tensor& dweight);

}  // namespace rill::ref
