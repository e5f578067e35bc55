// The fixed and LSTM gates of the block-recurrent cell.
#include "rill/models/recurrent_gate.h"

#include <cmath>

#include "rill/core/error.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"

namespace rill {

GateKind parse_gate_kind(const std::string& name) {
  if (name == "fixed") return GateKind::fixed;
  if (name == "lstm") return GateKind::lstm;
  fail("[config] unknown gate \"{}\" (known: fixed, lstm)", name);
}

const char* gate_kind_name(GateKind kind) { return kind == GateKind::fixed ? "fixed" : "lstm"; }

RecurrentGate::RecurrentGate(GateKind k, int64_t d_model, int64_t input_dim, uint64_t seed,
                             DType dtype)
    : kind(k) {
  if (kind == GateKind::fixed) {
    Tensor b = Tensor::empty({d_model}, dtype);
    nn::normal_(b, 0, 0.1, nn::derive_seed(seed, 0));
    bias = register_parameter("bias", b, nn::ParamKind::bias);
    return;
  }
  nn::LinearOptions o;
  o.dtype = dtype;
  o.init = nn::LinearInit::normal;
  o.std = std::sqrt(0.1 / double(input_dim));
  forget = register_module(
      "forget", std::make_shared<nn::Linear>(input_dim, d_model, nn::derive_seed(seed, 1), o));
  add = register_module(
      "add", std::make_shared<nn::Linear>(input_dim, d_model, nn::derive_seed(seed, 2), o));
  nn::normal_(forget->bias, 0, 0.1, nn::derive_seed(seed, 3));
  nn::normal_(add->bias, 0, 0.1, nn::derive_seed(seed, 4));
}

Tensor RecurrentGate::forward(const Tensor& state, const Tensor& update,
                              const Tensor& input) const {
  if (kind == GateKind::fixed) {
    // 1 - sigmoid(b) = sigmoid(-b): no cancellation when the gate saturates.
    return sigmoid(bias) * state + sigmoid(neg(bias)) * update;
  }
  const Tensor f = sigmoid(rill::add(forget->forward(input), 1.0));
  const Tensor i = sigmoid(rill::add(add->forward(input), -1.0));
  return f * state + i * update;
}

}  // namespace rill
