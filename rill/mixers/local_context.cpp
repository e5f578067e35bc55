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
      Tensor old = prev.defined() ? prev : Tensor::zeros({x.size(0), keep, x.size(2)}, x.dtype());
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

namespace {

// x' = sum_j w_j x_{t-j} with the last W-1 inputs in the state, on the buffers; then the inner
// stepper on x'.
class LocalContextStepper : public MixerStepper {
 public:
  LocalContextStepper(Tensor taps, std::unique_ptr<MixerStepper> inner, int64_t batch, int64_t d)
      : taps_(std::move(taps)),
        inner_(std::move(inner)),
        b_(batch),
        d_(d),
        mixed_(Tensor::empty({batch, d})) {}
  size_t weight_bytes() const override { return inner_->weight_bytes(); }
  void step(const Tensor& x, const Tensor& y, State& state) override {
    const int64_t w = taps_.size(0), keep = w - 1;
    Tensor prev = state.writable("local.prev");  // [B, W-1, D], oldest first
    RILL_CHECK(prev.shape() == Shape({b_, keep, d_}),
               "[local_context] state local.prev is {} but this stepper runs {} streams",
               shape_str(prev.shape()), b_);
    const float* tp = taps_.data<float>();
    const float* xp = x.data<float>();
    float* pp = prev.data<float>();
    float* mp = mixed_.data<float>();
    for (int64_t b = 0; b < b_; ++b) {
      const float* xr = xp + b * d_;
      float* pr = pp + b * keep * d_;
      float* mr = mp + b * d_;
      for (int64_t c = 0; c < d_; ++c) mr[c] = tp[c] * xr[c];
      for (int64_t j = 1; j < w; ++j)  // tap j reads the input j steps back: prev row keep - j
        for (int64_t c = 0; c < d_; ++c) mr[c] += tp[j * d_ + c] * pr[(keep - j) * d_ + c];
      for (int64_t r = 0; r + 1 < keep; ++r)  // shift the window by one and append x
        for (int64_t c = 0; c < d_; ++c) pr[r * d_ + c] = pr[(r + 1) * d_ + c];
      for (int64_t c = 0; c < d_; ++c) pr[(keep - 1) * d_ + c] = xr[c];
    }
    State inner = state.sub("mixer");
    inner_->step(mixed_, y, inner);
    state.insert("mixer", inner);
  }

 private:
  Tensor taps_;  // [W, D]
  std::unique_ptr<MixerStepper> inner_;
  int64_t b_, d_;
  Tensor mixed_;  // [B, D]
};

}  // namespace

std::unique_ptr<MixerStepper> LocalContextMixer::make_stepper(int64_t batch, WeightFormat format) {
  if (weight_.dtype() != DType::f32) return Mixer::make_stepper(batch, format);
  NoGradGuard no_grad;
  return std::make_unique<LocalContextStepper>(
      taps().contiguous(), inner_->make_stepper(batch, format), batch, d_model());
}

}  // namespace rill
