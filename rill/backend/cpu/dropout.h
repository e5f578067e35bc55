// Fast dropout kernel: the mask rule is ref's dropout_keep, evaluated per element in parallel.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::cpu {

// out[i] = keep(seed, offset + i) ? x[i] / (1 - p) : 0, with i the row-major index; the same
// call maps an output gradient to the input gradient. out must be contiguous.
void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out);

}  // namespace rill::cpu
