// The feed-forward block in its three kinds.
#include "rill/nn/mlp.h"

#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"

namespace rill::nn {

MLPKind parse_mlp_kind(const std::string& name) {
  if (name == "gelu") return MLPKind::gelu;
  if (name == "relu") return MLPKind::relu;
  if (name == "swiglu") return MLPKind::swiglu;
  fail("[config] mlp \"{}\" is not gelu, relu or swiglu", name);
}

const char* mlp_kind_name(MLPKind kind) {
  return kind == MLPKind::gelu ? "gelu" : kind == MLPKind::relu ? "relu" : "swiglu";
}

MLP::MLP(int64_t dim, int64_t hidden, MLPKind kind, uint64_t seed, bool bias, DType dtype)
    : kind(kind) {
  LinearOptions o;
  o.bias = bias;
  o.dtype = dtype;
  if (kind != MLPKind::swiglu) {
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
  if (kind == MLPKind::relu) return fc2->forward(relu(fc1->forward(x)));
  return down->forward(mul(silu(gate->forward(x)), up->forward(x)));
}

}  // namespace rill::nn
