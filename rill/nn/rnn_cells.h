// GRUCell and LSTMCell with PyTorch's equations, gate order and initialisation
// (every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden))).
//   GRU:  r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(W_iz x + b_iz + W_hz h + b_hz),
//         n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h
//   LSTM: i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh); c' = s(f) c + s(i) tanh(g),
//         h' = s(o) tanh(c')
#pragma once
#include <utility>

#include "rill/nn/module.h"

namespace rill::nn {

class GRUCell : public Module {
 public:
  GRUCell(int64_t input, int64_t hidden, uint64_t seed, DType dtype = DType::f32);
  Tensor forward(const Tensor& x, const Tensor& h) const;  // x [B, input], h [B, hidden]

  int64_t hidden;
  Tensor weight_ih, weight_hh;  // [3H, input], [3H, H]; gate order r, z, n
  Tensor bias_ih, bias_hh;      // [3H]
};

class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input, int64_t hidden, uint64_t seed, DType dtype = DType::f32);
  // Returns (h', c').
  std::pair<Tensor, Tensor> forward(const Tensor& x, const Tensor& h, const Tensor& c) const;

  int64_t hidden;
  Tensor weight_ih, weight_hh;  // [4H, input], [4H, H]; gate order i, f, g, o
  Tensor bias_ih, bias_hh;      // [4H]
};

}  // namespace rill::nn
