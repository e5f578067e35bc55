// LayerNorm and RMSNorm over the last dim. Gains start at 1, biases at 0.
#pragma once
#include "rill/nn/module.h"

namespace rill::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool bias = true, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;

  Tensor weight;  // [dim]
  Tensor bias;    // [dim] (undefined without bias)
  double eps;
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;

  Tensor weight;  // [dim]
  double eps;
};

}  // namespace rill::nn
