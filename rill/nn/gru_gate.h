// The GRU-type gate that replaces a residual connection in GTrXL (Parisotto et al. 2020) and in
// the ReLiT authors' layers (papers/relit.md §1.3). For the residual stream x and a sublayer's
// output y (both [..., D]):
//   r = sigmoid(W_r y + U_r x)
//   z = sigmoid(W_z y + U_z x - b_g)
//   h = tanh(W_g y + U_g (r * x))
//   g = (1 - z) * x + z * h
// W and U have no bias; b_g is learned and starts at 2, so that z starts near 0.12 and the gate
// passes x nearly unchanged (the identity the paper found essential for stable training).
#pragma once
#include <memory>

#include "rill/nn/linear.h"

namespace rill::nn {

class GruGate : public Module {
 public:
  GruGate(int64_t dim, uint64_t seed, DType dtype = DType::f32, double gate_bias = 2.0);
  Tensor forward(const Tensor& x, const Tensor& y) const;  // [..., D], [..., D] -> [..., D]

  std::shared_ptr<Linear> w_ryz;  // y -> [W_r y, W_z y, W_g y], [3D, D]
  std::shared_ptr<Linear> u_rz;   // x -> [U_r x, U_z x], [2D, D]
  std::shared_ptr<Linear> u_g;    // r * x -> U_g (r * x), [D, D]
  Tensor gate_bias;               // b_g [D]

 private:
  int64_t dim_;
};

}  // namespace rill::nn
