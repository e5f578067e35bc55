// Linear layers: y = x W^T + b with PyTorch-like initialisation.
#include "rill/nn/linear.h"

#include <cmath>

#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"

namespace rill::nn {

Linear::Linear(int64_t in, int64_t out, uint64_t seed, LinearOptions opt) {
  RILL_CHECK(in > 0 && out > 0, "[linear] sizes must be positive, got in {} out {}", in, out);
  Tensor w = Tensor::empty({out, in}, opt.dtype);
  const double bound = 1.0 / std::sqrt(double(in));
  switch (opt.init) {
    case LinearInit::fan_in_uniform:
      uniform_(w, -bound, bound, derive_seed(seed, 0));
      break;
    case LinearInit::xavier_uniform:
      xavier_uniform_(w, derive_seed(seed, 0));
      break;
    case LinearInit::normal:
      normal_(w, 0, opt.std, derive_seed(seed, 0));
      break;
    case LinearInit::orthogonal:
      orthogonal_(w, derive_seed(seed, 0), opt.gain);
      break;
  }
  weight = register_parameter("weight", w);
  if (opt.bias) {
    Tensor b = Tensor::empty({out}, opt.dtype);
    if (opt.init == LinearInit::fan_in_uniform)
      uniform_(b, -bound, bound, derive_seed(seed, 1));
    else
      b.fill_(0);
    bias = register_parameter("bias", b, ParamKind::bias);
  }
}

Tensor Linear::forward(const Tensor& x) const {
  RILL_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == weight.size(1),
             "[linear] input {} does not end in the {} input features of weight {}",
             x.defined() ? shape_str(x.shape()) : "undefined", weight.size(1),
             shape_str(weight.shape()));
  Tensor y = matmul(x, weight.transpose(0, 1));
  return bias.defined() ? add(y, bias) : y;
}

}  // namespace rill::nn
