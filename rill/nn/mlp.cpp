#include "rill/nn/mlp.h"

#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"

namespace rill::nn {

MLP::MLP(int64_t dim, int64_t hidden, MLPKind kind, uint64_t seed, bool bias, DType dtype)
    : kind(kind) {
  LinearOptions o;
  o.bias = bias;
  o.dtype = dtype;
  if (kind == MLPKind::gelu) {
    fc1 = register_module("fc1", std::make_shared<Linear>(dim, hidden, derive_seed(seed, 0), o));
    fc2 = register_module("fc2", std::make_shared<Linear>(hidden, dim, derive_seed(seed, 1), o));
  } else {
    gate = register_module("gate", std::make_shared<Linear>(dim, hidden, derive_seed(seed, 0), o));
    up = register_module("up", std::make_shared<Linear>(dim, hidden, derive_seed(seed, 1), o));
    down = register_module("down", std::make_shared<Linear>(hidden, dim, derive_seed(seed, 2), o));
  }
}

Tensor MLP::forward(const Tensor& x) const {
  if (kind == MLPKind::gelu) return fc2->forward(gelu(fc1->forward(x)));
  return down->forward(mul(silu(gate->forward(x)), up->forward(x)));
}

}  // namespace rill::nn
