// The GTrXL gate: one product for the three y terms, one for the two x terms.
#include "rill/nn/gru_gate.h"

#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"

namespace rill::nn {

GruGate::GruGate(int64_t dim, uint64_t seed, DType dtype, double b_g) : dim_(dim) {
  LinearOptions o;
  o.bias = false;
  o.dtype = dtype;
  o.init = LinearInit::xavier_uniform;
  w_ryz = register_module("w", std::make_shared<Linear>(dim, 3 * dim, derive_seed(seed, 0), o));
  u_rz = register_module("u_rz", std::make_shared<Linear>(dim, 2 * dim, derive_seed(seed, 1), o));
  u_g = register_module("u_g", std::make_shared<Linear>(dim, dim, derive_seed(seed, 2), o));
  gate_bias = register_parameter("gate_bias", Tensor::full({dim}, b_g, dtype), ParamKind::bias);
}

Tensor GruGate::forward(const Tensor& x, const Tensor& y) const {
  const int64_t last = x.dim() - 1;
  Tensor wy = w_ryz->forward(y), ux = u_rz->forward(x);
  Tensor r = sigmoid(add(wy.narrow(last, 0, dim_), ux.narrow(last, 0, dim_)));
  Tensor z = sigmoid(sub(add(wy.narrow(last, dim_, dim_), ux.narrow(last, dim_, dim_)), gate_bias));
  Tensor h = tanh(add(wy.narrow(last, 2 * dim_, dim_), u_g->forward(mul(r, x))));
  return add(x, mul(z, sub(h, x)));  // (1 - z) x + z h
}

}  // namespace rill::nn
