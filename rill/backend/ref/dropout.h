// Reference dropout kernel, and the definition of the mask that every backend shares.
#pragma once
#include <cstdint>

#include "rill/core/rng.h"
#include "rill/core/tensor.h"

namespace rill {

// Whether the element at Philox counter `counter` survives: its 53-bit uniform is >= p. Every
// backend uses this one rule, so their masks agree bit for bit.
inline bool dropout_keep(uint64_t seed, uint64_t counter, double p) {
  return uniform_at(seed, counter) >= p;
}

namespace ref {

// out[i] = keep(seed, offset + i) ? x[i] / (1 - p) : 0, with i the row-major index; the same
// call maps an output gradient to the input gradient. x and out may have any strides.
void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out);

}  // namespace ref
}  // namespace rill
