// Reference linear solve: textbook Gaussian elimination with partial pivoting followed by back
// substitution, one element at a time. Written for clarity, not speed: it is the oracle the
// LAPACK kernel of rill/backend/cpu/linalg.h is compared against.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::ref {

// x [n, m] <- a^{-1} b for a [n, n] and b [n, m]; all three contiguous, one floating dtype
// (f32 or f64, arithmetic in that dtype). a and b are only read. zero_pivot is set to 0 on
// success, or to k + 1 when the k-th pivot (0-based) of the elimination is exactly zero, i.e. a
// is singular to working precision (LAPACK's info convention); x is then not meaningful.
void solve(const Tensor& a, const Tensor& b, const Tensor& x, int64_t& zero_pivot);

}  // namespace rill::ref
