// Fast, deterministic reductions over a set of dims.
#pragma once
#include <vector>

#include "rill/backend/reduce_kind.h"
#include "rill/core/tensor.h"

namespace rill::cpu {

// out has x's shape with every reduced dim set to 1 (keepdim form); dims are sorted and unique.
void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out);

}  // namespace rill::cpu
