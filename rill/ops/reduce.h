// Reductions over any set of dims (empty dims = all), with keepdim.
#pragma once
#include <vector>

#include "rill/core/tensor.h"

namespace rill {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// The maximum value (amax). Its gradient is shared equally between tied maxima.
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);

// Sums a broadcast result back to `shape` (the gradient of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace rill
