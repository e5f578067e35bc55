// Dropout with a counter-based mask: the same (seed, offset) gives the same mask anywhere.
#include "rill/nn/dropout.h"

#include "rill/ops/dropout.h"

namespace rill::nn {

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, generator, is_training()); }

}  // namespace rill::nn
