// Fast linear solve on the CPU: LAPACK's LU with partial pivoting (sgesv_ / dgesv_), from the
// OpenBLAS library CMakeLists.txt already links for the GEMMs.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::cpu {

// Same contract as ref::solve: x [n, m] <- a^{-1} b for a [n, n] and b [n, m], all contiguous,
// one floating dtype; a and b are only read. zero_pivot: 0 on success, else LAPACK's info > 0
// (U(info, info) of the LU factorisation is exactly zero: a is singular to working precision).
void solve(const Tensor& a, const Tensor& b, const Tensor& x, int64_t& zero_pivot);

}  // namespace rill::cpu
