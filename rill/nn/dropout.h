// Dropout as a module: active in training mode only; its Generator makes masks reproducible.
#pragma once
#include "rill/core/rng.h"
#include "rill/nn/module.h"

namespace rill::nn {

class Dropout : public Module {
 public:
  Dropout(double p, uint64_t seed) : p(p), generator(seed) {}
  Tensor forward(const Tensor& x);

  double p;
  Generator generator;  // its (seed, offset) is part of a checkpoint's RNG state
};

}  // namespace rill::nn
