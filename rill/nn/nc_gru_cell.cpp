// NCGRUCell (see nc_gru_cell.h), composed from ops: W_c by one solve, the gates by matmuls and
// elementwise ops, so autograd gives every gradient, including P's through the solve.
#include "rill/nn/nc_gru_cell.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/linalg.h"
#include "rill/ops/matmul.h"

namespace rill::nn {

namespace {

constexpr const char* kOp = "nc_gru_cell";

Tensor uniform_param(const Shape& shape, double k, uint64_t seed, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  uniform_(t, -k, k, seed);
  return t;
}

// P [H, H] of the Cayley initialisation: P[2k, 2k+1] = tan(t_k / 2), t_k ~ U(0, pi/2). Then
// A = P - P^T has 2x2 blocks [[0, s], [-s, 0]] whose Cayley transform is a rotation by
// 2 atan(s) = t_k.
Tensor cayley_init(int64_t hidden, uint64_t seed, DType dtype) {
  std::vector<double> p(hidden * hidden, 0.0);
  if (hidden >= 2) {
    Tensor angles = Tensor::empty({hidden / 2}, DType::f64);
    uniform_(angles, 0.0, std::numbers::pi / 2, seed);
    const std::vector<double> t = angles.to_vector<double>();
    for (int64_t k = 0; k < hidden / 2; ++k) p[(2 * k) * hidden + 2 * k + 1] = std::tan(t[k] / 2);
  }
  return Tensor::from_vector<double>(p, {hidden, hidden}).to(dtype);
}

}  // namespace

Tensor modrelu(const Tensor& z, const Tensor& bias) {
  // sign(z) as two masks (no gradient: sign is flat almost everywhere); the gradient reaches z
  // through |z|, where d|z|/dz = sign(z) and sign(z)^2 = 1.
  const Tensor zero = Tensor::scalar(0.0, z.dtype());
  const Tensor sign = sub(gt(z, zero), lt(z, zero));
  return mul(relu(add(abs(z), bias)), sign);
}

NCGRUCell::NCGRUCell(int64_t input, int64_t hidden, uint64_t seed, DType dtype,
                     int64_t negative_ones, NCGRUReset reset)
    : hidden(hidden), negative_ones(negative_ones), reset(reset) {
  RILL_CHECK(input >= 1 && hidden >= 1, "[{}] input and hidden must be >= 1; got {} and {}", kOp,
             input, hidden);
  RILL_CHECK(negative_ones >= 0 && negative_ones <= hidden,
             "[{}] negative_ones (the -1 entries of D) must be in [0, hidden = {}]; got {}", kOp,
             hidden, negative_ones);
  RILL_CHECK(is_floating(dtype), "[{}] expects f32 or f64, got {}", kOp, dtype_name(dtype));
  const double k = 1.0 / std::sqrt(double(hidden));
  weight_ih = register_parameter(
      "weight_ih", uniform_param({3 * hidden, input}, k, derive_seed(seed, 0), dtype));
  bias_ih = register_parameter(
      "bias_ih", uniform_param({3 * hidden}, k, derive_seed(seed, 1), dtype), ParamKind::bias);
  weight_hh = register_parameter(
      "weight_hh", uniform_param({2 * hidden, hidden}, k, derive_seed(seed, 2), dtype));
  cayley_p = register_parameter("cayley_p", cayley_init(hidden, derive_seed(seed, 3), dtype));
  bias_c = register_parameter("bias_c", uniform_param({hidden}, 0.01, derive_seed(seed, 4), dtype),
                              ParamKind::bias);
  std::vector<double> d(hidden, 1.0), eye(hidden * hidden, 0.0);
  for (int64_t i = hidden - negative_ones; i < hidden; ++i) d[i] = -1.0;
  for (int64_t i = 0; i < hidden; ++i) eye[i * hidden + i] = 1.0;
  cayley_d = Tensor::from_vector<double>(d, {hidden}).to(dtype);
  identity_ = Tensor::from_vector<double>(eye, {hidden, hidden}).to(dtype);
}

Tensor NCGRUCell::recurrent_matrix() const {
  Tensor a = sub(cayley_p, cayley_p.transpose(0, 1));  // [H, H], skew-symmetric
  // (I - A) D scales column j by d_j: D's diagonal broadcast along rows.
  Tensor rhs = mul(sub(identity_, a), cayley_d.view({1, hidden}));  // [H, H]
  return solve(add(identity_, a), rhs);                             // [H, H]
}

Tensor NCGRUCell::forward(const Tensor& x, const Tensor& h) const {
  return forward(x, h, recurrent_matrix());
}

Tensor NCGRUCell::forward(const Tensor& x, const Tensor& h, const Tensor& w_c) const {
  const int64_t H = hidden, input = weight_ih.size(1);
  auto sh = [](const Tensor& t) { return t.defined() ? shape_str(t.shape()) : "undefined"; };
  RILL_CHECK(x.defined() && h.defined() && x.dim() == 2 && h.dim() == 2 && x.size(1) == input &&
                 h.size(1) == H && x.size(0) == h.size(0),
             "[{}] expects x [B, {}] and h [B, {}], got {} and {}", kOp, input, H, sh(x), sh(h));
  RILL_CHECK(w_c.defined() && w_c.shape() == Shape({H, H}),
             "[{}] w_c must be [hidden, hidden] = [{}, {}] (recurrent_matrix()), got {}", kOp, H, H,
             sh(w_c));
  Tensor gi = add(matmul(x, weight_ih.transpose(0, 1)), bias_ih);   // [B, 3H]: r, u, c parts
  Tensor gh = matmul(h, weight_hh.transpose(0, 1));                 // [B, 2H]: r, u parts
  Tensor r = sigmoid(add(gi.narrow(1, 0, H), gh.narrow(1, 0, H)));  // [B, H]
  Tensor u = sigmoid(add(gi.narrow(1, H, H), gh.narrow(1, H, H)));  // [B, H]
  // Rows of h are states, so W_c h is h W_c^T.
  Tensor wt = w_c.transpose(0, 1);
  Tensor rec = reset == NCGRUReset::after_matmul ? mul(r, matmul(h, wt)) : matmul(mul(r, h), wt);
  Tensor c = modrelu(add(gi.narrow(1, 2 * H, H), rec), bias_c);  // [B, H]
  // u h + (1 - u) c, written c + u (h - c): one op fewer.
  return add(c, mul(u, sub(h, c)));
}

}  // namespace rill::nn
