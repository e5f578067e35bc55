// Fast kernels for copying (with dtype conversion) and filling strided tensors.
#pragma once
#include "rill/core/tensor.h"

namespace rill::cpu {

void copy(const Tensor& src, const Tensor& dst);  // dst[i] = T_dst(src[i]); same shape
void fill(const Tensor& dst, double value);

}  // namespace rill::cpu
