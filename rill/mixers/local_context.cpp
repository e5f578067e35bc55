// Local context around any mixer: token shift or a short causal depthwise convolution of the
// input (see local_context.h), with the last inputs carried in the state.
#include "rill/mixers/local_context.h"

#include "rill/ops/causal_conv.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"

namespace rill {

LocalContextConfig parse_local_context(const nlohmann::json& value, const std::string& mixer) {
  RILL_CHECK(value.is_string(),
             "[config] mixer \"{}\": \"local\" must be \"shift\" or \"conv2\" .. \"conv8\", got {}",
             mixer, value.dump());
  const std::string s = value.get<std::string>();
  LocalContextConfig c;
  if (s == "shift") {
    c.shift = true;
    c.width = 2;
    return c;
  }
  if (s.size() == 5 && s.rfind("conv", 0) == 0 && s[4] >= '2' && s[4] <= '8') {
    c.width = s[4] - '0';
    return c;
  }
  fail("[config] mixer \"{}\": \"local\" is \"{}\"; it must be \"shift\" or \"conv2\" .. \"conv8\"",
       mixer, s);
}

LocalContextMixer::LocalContextMixer(const LocalContextConfig& c, std::shared_ptr<Mixer> inner,
                                     uint64_t, DType dtype)
    : Mixer(inner->d_model()), config_(c) {
  RILL_CHECK(c.width >= 2, "[local_context] width must be at least 2, got {}", c.width);
  const int64_t d = d_model();
  if (c.shift) {
    // Channels spread from mostly-previous to mostly-current token, so that some of them carry
    // the order from the first step.
    std::vector<double> mu(d);
    for (int64_t i = 0; i < d; ++i) mu[i] = (i + 0.5) / d;
    weight_ = register_parameter("local.mix", Tensor::from_vector(mu, {d}).to(dtype),
                                 nn::ParamKind::norm);
  } else {
    Tensor w = Tensor::zeros({c.width, d}, dtype);
    w.select(0, 0).fill_(1.0);  // the identity: the mixer starts from its own input
    weight_ = register_parameter("local.weight", w, nn::ParamKind::norm);
  }
  inner_ = register_module("mixer", std::move(inner));
}

Tensor LocalContextMixer::taps() const {
  if (!config_.shift) return weight_;
  return stack({weight_, add(neg(weight_), 1.0)}, 0);  // [2, D]: current, previous
}

State LocalContextMixer::init_state(int64_t batch) const {
  State s;
  s.insert("mixer", inner_->init_state(batch));
  s.set("local.prev", Tensor::zeros({batch, config_.width - 1, d_model()}, weight_.dtype()));
  return s;
}

Tensor LocalContextMixer::mix(const Tensor& x, State* state) {
  const int64_t keep = config_.width - 1, t = x.size(1);
  Tensor prev = state && state->has("local.prev") ? state->get("local.prev") : Tensor();
  Tensor y = causal_conv1d(x, taps(), prev);
  if (state) {
    // The last W-1 inputs, reaching back into the carried ones when this piece is shorter.
    Tensor last;
    if (t >= keep) {
      last = x.narrow(1, t - keep, keep);
    } else {
      Tensor old = prev.defined() ? prev
                                  : Tensor::zeros({x.size(0), keep, x.size(2)}, x.dtype());
      last = concat({old.narrow(1, t, keep - t), x}, 1);
    }
    state->set("local.prev", last.contiguous());
  }
  return y;
}

Tensor LocalContextMixer::forward(const Tensor& x, State* state) {
  check_forward_input(x);
  if (!state) return inner_->forward(mix(x, nullptr), nullptr);
  Tensor mixed = mix(x, state);
  State inner = state->sub("mixer");
  Tensor y = inner_->forward(mixed, &inner);
  state->insert("mixer", inner);
  return y;
}

Tensor LocalContextMixer::step_impl(const Tensor& x_t, State& state) {
  Tensor mixed = mix(x_t.unsqueeze(1), &state).squeeze(1);
  State inner = state.sub("mixer");
  Tensor y = inner_->step(mixed, inner);
  state.insert("mixer", inner);
  return y;
}

}  // namespace rill
