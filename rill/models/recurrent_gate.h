// The gates of the Block-Recurrent Transformer's recurrent cell (Hutchins et al. 2022, §3.2;
// papers/block-recurrent.md §1.3), which replace the residual connections on the state path:
//   fixed  g = sigmoid(b), b [D] learned (init N(0, 0.1), so g starts near 0.5):
//          next = g * state + (1 - g) * update           (a learned per-dimension moving average)
//   lstm   f = sigmoid(input W_f + b_f + 1), i = sigmoid(input W_i + b_i - 1):
//          next = f * state + i * update                 (biased towards remembering)
// W_f, W_i [D, In] ~ N(0, 0.1 / In) and b_f, b_i ~ N(0, 0.1), as meliad initialises them: small
// but not zero, since a gate that starts shut makes the model ignore its state for good.
// Shapes: B batch, S state vectors, D d_model, In the gate input's width.
#pragma once
#include <memory>
#include <string>

#include "rill/nn/linear.h"

namespace rill {

enum class GateKind { fixed, lstm };
GateKind parse_gate_kind(const std::string& name);  // "fixed" or "lstm"
const char* gate_kind_name(GateKind kind);

class RecurrentGate : public nn::Module {
 public:
  RecurrentGate(GateKind kind, int64_t d_model, int64_t input_dim, uint64_t seed,
                DType dtype = DType::f32);
  // state, update [B, S, D]; input [B, S, In] (read by the lstm gate only) -> [B, S, D]
  Tensor forward(const Tensor& state, const Tensor& update, const Tensor& input) const;

  GateKind kind;
  Tensor bias;                              // fixed: b [D]
  std::shared_ptr<nn::Linear> forget, add;  // lstm: In -> D, with biases
};

}  // namespace rill
