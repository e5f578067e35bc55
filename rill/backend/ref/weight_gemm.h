// Reference weight_gemm: the plain loop over the dequantised weights in double, the oracle that
// the cpu kernels (backend/cpu/weight_gemm.h) are tested against. Same contract as theirs.
#pragma once
#include <cstdint>

#include "rill/backend/weights.h"

namespace rill::ref {

// y[b, n] = sum_k x[b, k] W[n, k] (+ bias[n]) (+ y[b, n] when accumulate), summed in double and
// rounded once; W[n, k] is PackedWeights::value (exact). Without accumulate y is only written.
void weight_gemm(const float* x, int64_t B, int64_t ldx, const PackedWeights& w, const float* bias,
                 float* y, int64_t ldy, bool accumulate);

}  // namespace rill::ref
