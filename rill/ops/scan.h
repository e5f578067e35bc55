// Scans along one dim: inclusive cumulative sum and cumulative log-sum-exp, both directions.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill {

// y[..., j, ...] = sum over positions i <= j along dim (i >= j when reverse: suffix sums).
// Any dtype; integers accumulate in their own type. Its gradient is the opposite-direction cumsum.
Tensor cumsum(const Tensor& x, int64_t dim, bool reverse = false);
// y_j = log sum_{i <= j} exp(x_i) (i >= j when reverse), with a running max so that large inputs
// stay finite and -inf inputs give -inf, never NaN. Floating dtypes only.
Tensor logcumsumexp(const Tensor& x, int64_t dim, bool reverse = false);

}  // namespace rill
