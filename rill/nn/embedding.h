// Embedding: a lookup table [vocab, dim]; ids of any shape give [..., dim].
// Default initialisation: N(0, std^2) with std = 1 (PyTorch's default; LMs often pass 0.02).
#pragma once
#include "rill/nn/module.h"

namespace rill::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t vocab, int64_t dim, uint64_t seed, double std = 1.0, DType dtype = DType::f32);
  Tensor forward(const Tensor& ids) const;

  Tensor weight;  // [vocab, dim]
};

}  // namespace rill::nn
