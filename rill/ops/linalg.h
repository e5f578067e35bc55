// Dense linear algebra ops. For now the one the Cayley-parametrised recurrences need (NC-GRU,
// rill/nn/nc_gru_cell.h): an exact, differentiable linear solve.
#pragma once
#include "rill/core/tensor.h"

namespace rill {

// x with a x = b, by LU with partial pivoting (ref: our own elimination; cpu: LAPACK ?gesv).
// a [n, n]; b [n, m] gives x [n, m], and b [n] (one right-hand side, as torch.linalg.solve
// takes it) gives x [n]. f32 or f64, one dtype for both; any strides (the op makes contiguous
// copies). Throws rill::Error when a is singular to working precision (an exactly zero pivot);
// a nearly singular a is not detected and gives a large, inaccurate x, as LAPACK's does (so is
// one singular in exact arithmetic whose elimination rounds to a tiny nonzero pivot, such as a
// matrix with two equal rows under LAPACK's blocked LU).
// Differentiable w.r.t. a and b: with gx = dL/dx, dL/db = solve(a^T, gx) and
// dL/da = -(dL/db) x^T. The backward solves afresh (it keeps no LU factors).
Tensor solve(const Tensor& a, const Tensor& b);

}  // namespace rill
