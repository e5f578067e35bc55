// GRU and LSTM cells, composed from ops.
#include "rill/nn/rnn_cells.h"

#include <cmath>

#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"

namespace rill::nn {

namespace {

Tensor uniform_param(const Shape& shape, int64_t hidden, uint64_t seed, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  const double k = 1.0 / std::sqrt(double(hidden));
  uniform_(t, -k, k, seed);
  return t;
}

// x W^T + b for a stacked gate weight.
Tensor affine(const Tensor& x, const Tensor& w, const Tensor& b) {
  return add(matmul(x, w.transpose(0, 1)), b);
}

void check_inputs(const char* op, const Tensor& x, const Tensor& h, int64_t input, int64_t hidden) {
  RILL_CHECK(x.defined() && h.defined() && x.dim() == 2 && h.dim() == 2 && x.size(1) == input &&
                 h.size(1) == hidden && x.size(0) == h.size(0),
             "[{}] expects x [B, {}] and h [B, {}], got {} and {}", op, input, hidden,
             x.defined() ? shape_str(x.shape()) : "undefined",
             h.defined() ? shape_str(h.shape()) : "undefined");
}

}  // namespace

GRUCell::GRUCell(int64_t input, int64_t hidden, uint64_t seed, DType dtype) : hidden(hidden) {
  weight_ih = register_parameter(
      "weight_ih", uniform_param({3 * hidden, input}, hidden, derive_seed(seed, 0), dtype));
  weight_hh = register_parameter(
      "weight_hh", uniform_param({3 * hidden, hidden}, hidden, derive_seed(seed, 1), dtype));
  bias_ih = register_parameter(
      "bias_ih", uniform_param({3 * hidden}, hidden, derive_seed(seed, 2), dtype), ParamKind::bias);
  bias_hh = register_parameter(
      "bias_hh", uniform_param({3 * hidden}, hidden, derive_seed(seed, 3), dtype), ParamKind::bias);
}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) const {
  check_inputs("gru_cell", x, h, weight_ih.size(1), hidden);
  Tensor gi = affine(x, weight_ih, bias_ih), gh = affine(h, weight_hh, bias_hh);
  const int64_t H = hidden;
  Tensor r = sigmoid(add(gi.narrow(1, 0, H), gh.narrow(1, 0, H)));
  Tensor z = sigmoid(add(gi.narrow(1, H, H), gh.narrow(1, H, H)));
  Tensor n = tanh(add(gi.narrow(1, 2 * H, H), mul(r, gh.narrow(1, 2 * H, H))));
  return add(mul(add(neg(z), 1.0), n), mul(z, h));
}

LSTMCell::LSTMCell(int64_t input, int64_t hidden, uint64_t seed, DType dtype) : hidden(hidden) {
  weight_ih = register_parameter(
      "weight_ih", uniform_param({4 * hidden, input}, hidden, derive_seed(seed, 0), dtype));
  weight_hh = register_parameter(
      "weight_hh", uniform_param({4 * hidden, hidden}, hidden, derive_seed(seed, 1), dtype));
  bias_ih = register_parameter(
      "bias_ih", uniform_param({4 * hidden}, hidden, derive_seed(seed, 2), dtype), ParamKind::bias);
  bias_hh = register_parameter(
      "bias_hh", uniform_param({4 * hidden}, hidden, derive_seed(seed, 3), dtype), ParamKind::bias);
}

std::pair<Tensor, Tensor> LSTMCell::forward(const Tensor& x, const Tensor& h,
                                            const Tensor& c) const {
  check_inputs("lstm_cell", x, h, weight_ih.size(1), hidden);
  RILL_CHECK(c.defined() && c.shape() == h.shape(), "[lstm_cell] c {} must match h {}",
             c.defined() ? shape_str(c.shape()) : "undefined", shape_str(h.shape()));
  Tensor gates = add(affine(x, weight_ih, bias_ih), affine(h, weight_hh, bias_hh));
  const int64_t H = hidden;
  Tensor i = sigmoid(gates.narrow(1, 0, H)), f = sigmoid(gates.narrow(1, H, H));
  Tensor g = tanh(gates.narrow(1, 2 * H, H)), o = sigmoid(gates.narrow(1, 3 * H, H));
  Tensor c2 = add(mul(f, c), mul(i, g));
  return {mul(o, tanh(c2)), c2};
}

}  // namespace rill::nn
