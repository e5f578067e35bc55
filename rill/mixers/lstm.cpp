// The LSTM and GRU baselines: the cell looped over the sequence, and their registrations.
#include "rill/mixers/lstm.h"

#include "rill/io/json_fields.h"
#include "rill/mixers/registry.h"
#include "rill/nn/init.h"
#include "rill/ops/index.h"

namespace rill {

RecurrentCellMixer::RecurrentCellMixer(const RecurrentCellConfig& c) : Mixer(c.d_model), config(c) {
  hidden_ = c.hidden > 0 ? c.hidden : c.d_model;
  if (c.cell == CellKind::lstm)
    lstm_ = register_module("cell", std::make_shared<nn::LSTMCell>(
                                        c.d_model, hidden_, nn::derive_seed(c.seed, 0), c.dtype));
  else
    gru_ = register_module("cell", std::make_shared<nn::GRUCell>(
                                       c.d_model, hidden_, nn::derive_seed(c.seed, 0), c.dtype));
  if (hidden_ != c.d_model) {
    nn::LinearOptions o;
    o.bias = false;
    o.dtype = c.dtype;
    out_ = register_module(
        "out", std::make_shared<nn::Linear>(hidden_, c.d_model, nn::derive_seed(c.seed, 1), o));
  }
}

State RecurrentCellMixer::init_state(int64_t batch) const {
  State s;
  s.set("h", Tensor::zeros({batch, hidden_}, config.dtype));
  if (config.cell == CellKind::lstm) s.set("c", Tensor::zeros({batch, hidden_}, config.dtype));
  return s;
}

double RecurrentCellMixer::mixing_flops_per_token(int64_t) const {
  const double h = double(hidden_);
  // LSTM: W_hh h is 4Hd x Hd, about 10 Hd for the gates; GRU: 3Hd x Hd and about 10 Hd.
  return config.cell == CellKind::lstm ? 2.0 * 4 * h * h + 10 * h : 2.0 * 3 * h * h + 10 * h;
}

void RecurrentCellMixer::check_state(const State& s, int64_t batch) const {
  for (const char* name : {"h", "c"}) {
    if (std::string(name) == "c" && config.cell != CellKind::lstm) continue;
    RILL_CHECK(s.has(name) && s.get(name).shape() == Shape({batch, hidden_}) &&
                   s.get(name).dtype() == config.dtype,
               "[{}] state {} must be [{}, {}] {}, got {}", kind(), name, batch, hidden_,
               dtype_name(config.dtype), s.has(name) ? shape_str(s.get(name).shape()) : "nothing");
  }
}

Tensor RecurrentCellMixer::forward(const Tensor& x, State* state) {
  check_forward_input(x);
  const int64_t b = x.size(0), t = x.size(1);
  State local = state ? *state : init_state(b);
  check_state(local, b);
  Tensor h = local.get("h");
  Tensor c = config.cell == CellKind::lstm ? local.get("c") : Tensor();
  std::vector<Tensor> outs;  // t x [B, 1, Hd]
  outs.reserve(t);
  for (int64_t i = 0; i < t; ++i) {
    Tensor xi = x.select(1, i);  // [B, D]
    if (lstm_) {
      std::tie(h, c) = lstm_->forward(xi, h, c);
    } else {
      h = gru_->forward(xi, h);
    }
    outs.push_back(h.unsqueeze(1));
  }
  Tensor y = t == 1 ? outs[0] : concat(outs, 1);  // [B, T, Hd]
  if (state) {
    state->set("h", h);
    if (lstm_) state->set("c", c);
  }
  return out_ ? out_->forward(y) : y;
}

Tensor RecurrentCellMixer::step_impl(const Tensor& x_t, State& state) {
  return forward(x_t.unsqueeze(1), &state).squeeze(1);
}

namespace {

std::shared_ptr<Mixer> build(CellKind cell, const nlohmann::json& config, int64_t d_model,
                             uint64_t seed, DType dtype) {
  RecurrentCellConfig c;
  c.cell = cell, c.d_model = d_model, c.seed = seed, c.dtype = dtype;
  JsonFields f(config, cell == CellKind::lstm ? "mixer \"lstm\"" : "mixer \"gru\"");
  f.ignore("type");
  f.get("hidden", c.hidden);
  f.check("hidden", c.hidden, c.hidden >= 0 && c.hidden <= 65536, "between 0 (d_model) and 65536");
  f.finish();
  return std::make_shared<RecurrentCellMixer>(c);
}

const MixerRegistration kLstm({
    "lstm",
    "LSTM over the sequence (PyTorch's cell), hidden = d_model or projected back",
    [](const nlohmann::json& j, int64_t d, uint64_t seed, DType dt) {
      return build(CellKind::lstm, j, d, seed, dt);
    },
    {
        {{"type", "lstm"}},
        {{"type", "lstm"}, {"hidden", 24}},
    },
});

const MixerRegistration kGru({
    "gru",
    "GRU over the sequence (PyTorch's cell), hidden = d_model or projected back",
    [](const nlohmann::json& j, int64_t d, uint64_t seed, DType dt) {
      return build(CellKind::gru, j, d, seed, dt);
    },
    {
        {{"type", "gru"}},
        {{"type", "gru"}, {"hidden", 8}, {"local", "shift"}},
    },
});

}  // namespace

}  // namespace rill
