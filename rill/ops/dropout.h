// Dropout with a counter-based mask: reproducible for any thread count, recomputed in backward.
#pragma once
#include "rill/core/rng.h"
#include "rill/core/tensor.h"

namespace rill {

// Zeroes each element with probability p and scales the rest by 1/(1-p). The mask of element i
// (row-major) comes from Philox at counter gen.advance(numel) + i, so it is the same whatever the
// thread count; the backward recomputes the mask from (seed, offset) instead of storing it. In
// eval mode (training=false) or p == 0 it returns x and leaves gen untouched. p must be in [0, 1).
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

}  // namespace rill
