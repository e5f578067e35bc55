// Recurrent baselines as sequence mixers: an LSTM ("lstm") and a GRU ("gru") over the sequence,
// one nn::LSTMCell / nn::GRUCell step per token (PyTorch's equations, rnn_cells.h). The forward
// loops the cell over T on the tape (backpropagation through time); step runs the cell once.
// Shapes: B batch, T time, D d_model, Hd hidden (default D; another size adds a projection
// Hd -> D without bias). State: h [B, Hd] (and c [B, Hd] for the LSTM), zeros when fresh.
#pragma once
#include <memory>
#include <string>

#include "rill/mixers/mixer.h"
#include "rill/nn/linear.h"
#include "rill/nn/rnn_cells.h"

namespace rill {

enum class CellKind { lstm, gru };

struct RecurrentCellConfig {
  CellKind cell = CellKind::lstm;
  int64_t d_model = 256;
  int64_t hidden = 0;  // 0: d_model
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class RecurrentCellMixer : public Mixer {
 public:
  explicit RecurrentCellMixer(const RecurrentCellConfig& config);

  State init_state(int64_t batch) const override;
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return config.cell == CellKind::lstm ? "lstm" : "gru"; }
  bool constant_state() const override { return true; }
  // The recurrent product W_hh h (the input product W_ih x is a projection, like q, k, v) and
  // the gate arithmetic.
  double mixing_flops_per_token(int64_t context) const override;

  RecurrentCellConfig config;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;

 private:
  void check_state(const State& s, int64_t batch) const;
  int64_t hidden_;
  std::shared_ptr<nn::LSTMCell> lstm_;
  std::shared_ptr<nn::GRUCell> gru_;
  std::shared_ptr<nn::Linear> out_;  // Hd -> D, only when Hd != D
};

}  // namespace rill
