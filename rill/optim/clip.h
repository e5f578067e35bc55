// Gradient clipping by global norm.
#pragma once
#include <vector>

#include "rill/core/tensor.h"

namespace rill::optim {

// Scales every gradient by max_norm / norm when the global L2 norm exceeds max_norm; returns the
// norm before clipping. Accumulated in double in a fixed order: deterministic.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace rill::optim
