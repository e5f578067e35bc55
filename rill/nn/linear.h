// Linear: y = x W^T + b, with W [out, in] and b [out].
// Default initialisation (as PyTorch): W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
#pragma once
#include "rill/nn/module.h"

namespace rill::nn {

// orthogonal: orthogonal_(W, gain) (init.h) and a zero bias.
enum class LinearInit { fan_in_uniform, xavier_uniform, normal, orthogonal };

struct LinearOptions {
  bool bias = true;
  LinearInit init = LinearInit::fan_in_uniform;
  double std = 0.02;  // for LinearInit::normal
  double gain = 1.0;  // for LinearInit::orthogonal
  DType dtype = DType::f32;
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, uint64_t seed, LinearOptions opt = {});
  Tensor forward(const Tensor& x) const;  // [..., in] -> [..., out]

  Tensor weight;  // [out, in]
  Tensor bias;    // [out] (undefined without bias)
};

}  // namespace rill::nn
