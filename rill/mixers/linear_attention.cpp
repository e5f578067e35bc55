// Linear attention as an RNN: the mixer (projections, feature map, normaliser or output norm)
// around the causal linear-attention op, and its registration.
#include "rill/mixers/linear_attention.h"

#include <cmath>

#include "rill/core/profiler.h"
#include "rill/io/json_fields.h"
#include "rill/mixers/registry.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/norm.h"

namespace rill {

FeatureMap parse_feature_map(const std::string& name) {
  if (name == "elu1" || name == "elu+1") return FeatureMap::elu1;
  if (name == "relu") return FeatureMap::relu;
  fail("[linear_attention] unknown feature map \"{}\" (elu1, relu)", name);
}

DecayKind parse_decay_kind(const std::string& name) {
  if (name == "none") return DecayKind::none;
  if (name == "retnet") return DecayKind::retnet;
  if (name == "learned") return DecayKind::learned;
  if (name == "input") return DecayKind::input;
  fail("[linear_attention] unknown decay \"{}\" (none, retnet, learned, input)", name);
}

namespace {

// RetNet's per-head decays: head h keeps 1 - 2^(-5-h) of its state each token.
std::vector<double> retnet_log_decays(int64_t heads) {
  std::vector<double> g(static_cast<size_t>(heads));
  for (int64_t h = 0; h < heads; ++h) g[h] = std::log1p(-std::exp2(-5.0 - double(h)));
  return g;
}

// theta with -softplus(theta) = g (g < 0): theta = log(exp(-g) - 1).
double inverse_neg_softplus(double g) { return std::log(std::expm1(-g)); }

}  // namespace

LinearAttentionMixer::LinearAttentionMixer(const LinearAttentionConfig& c)
    : Mixer(c.d_model), config(c) {
  RILL_CHECK(c.heads > 0 && (c.head_dim > 0 || c.d_model % c.heads == 0),
             "[linear_attention] d_model {} is not divisible by {} heads", c.d_model, c.heads);
  RILL_CHECK(c.chunk > 0, "[linear_attention] chunk must be positive, got {}", c.chunk);
  head_dim_ = c.head_dim > 0 ? c.head_dim : c.d_model / c.heads;
  state_cols_ = head_dim_ + (c.normalize ? 1 : 0);
  proj_ = register_module(
      "proj", std::make_shared<MultiHeadProjection>(c.d_model, c.heads, head_dim_, head_dim_,
                                                    c.seed, false, c.dtype));
  if (!c.normalize)
    out_gain_ = register_parameter("out_norm.weight", Tensor::ones({head_dim_}, c.dtype),
                                   nn::ParamKind::norm);
  const std::vector<double> g = retnet_log_decays(c.heads);
  std::vector<double> theta(g.size());
  for (size_t h = 0; h < g.size(); ++h) theta[h] = inverse_neg_softplus(g[h]);
  switch (c.decay) {
    case DecayKind::none:
      break;
    case DecayKind::retnet:
      decay_ = register_buffer("log_decay", Tensor::from_vector(g, {1, c.heads, 1}).to(c.dtype));
      break;
    case DecayKind::learned:
      decay_ = register_parameter("decay", Tensor::from_vector(theta, {1, c.heads, 1}).to(c.dtype),
                                  nn::ParamKind::bias);
      break;
    case DecayKind::input: {
      nn::LinearOptions o;
      o.dtype = c.dtype;
      o.init = nn::LinearInit::normal;
      o.std = 0.02;  // small: every gate starts near its head's RetNet decay
      gate_ = register_module(
          "gate", std::make_shared<nn::Linear>(c.d_model, c.heads, nn::derive_seed(c.seed, 7), o));
      gate_->bias.copy_(Tensor::from_vector(theta, {c.heads}));
      break;
    }
  }
}

Tensor LinearAttentionMixer::log_decay(const Tensor& x) const {
  switch (config.decay) {
    case DecayKind::none:
      return Tensor();
    case DecayKind::retnet:
      return decay_;
    case DecayKind::learned:
      return neg(softplus(decay_));
    case DecayKind::input:
      return neg(softplus(gate_->forward(x))).transpose(1, 2);  // [B,T,H] -> [B,H,T]
  }
  return Tensor();
}

State LinearAttentionMixer::init_state(int64_t batch) const {
  State s;
  s.set("S", Tensor::zeros({batch, config.heads, head_dim_, state_cols_}, config.dtype));
  return s;
}

Tensor LinearAttentionMixer::feature(const Tensor& x) const {
  return config.feature_map == FeatureMap::elu1 ? add(elu(x), 1.0) : relu(x);
}

Tensor LinearAttentionMixer::readout(const Tensor& num_aug) const {
  if (!config.normalize) return rms_norm(num_aug, out_gain_);
  const int64_t last = num_aug.dim() - 1;
  Tensor num = num_aug.narrow(last, 0, head_dim_);
  Tensor den = num_aug.narrow(last, head_dim_, 1);
  return div(num, add(den, config.eps));
}

Tensor LinearAttentionMixer::forward(const Tensor& x, State* state) {
  return forward_with(x, state, Tensor());
}

Tensor LinearAttentionMixer::forward_native_resets(const Tensor& x, State* state,
                                                   const Tensor& resets) {
  RILL_CHECK(config.causal, "[linear_attention] the non-causal form has no resets");
  return forward_with(x, state, resets);
}

Tensor LinearAttentionMixer::forward_with(const Tensor& x, State* state, const Tensor& resets) {
  check_forward_input(x);
  Tensor q = feature(proj_->q(x)), k = feature(proj_->k(x)), v = proj_->v(x);  // [B,H,T,d]
  if (config.normalize) {
    Shape ones_shape = v.shape();
    ones_shape.back() = 1;
    v = concat({v, Tensor::ones(ones_shape, v.dtype())}, -1);  // [B,H,T,Da]
  }
  if (!config.causal) {
    RILL_CHECK(state == nullptr,
               "[linear_attention] the non-causal form has no recurrent state to carry");
    return proj_->out(readout(linear_attention_noncausal(q, k, v)));
  }
  Tensor s0 = state && state->has("S") ? state->get("S") : Tensor();
  if (s0.defined())
    RILL_CHECK(s0.shape() == Shape({x.size(0), config.heads, head_dim_, state_cols_}),
               "[linear_attention] state S is {} but this batch needs {}", shape_str(s0.shape()),
               shape_str({x.size(0), config.heads, head_dim_, state_cols_}));
  Tensor num, s_final;
  {
    ProfileScope scope("linear attention op (forward)");
    std::tie(num, s_final) = causal_linear_attention(
        q, k, v, s0, {log_decay(x), Tensor(), Tensor(), resets}, config.form, config.chunk);
  }
  if (state) state->set("S", s_final);
  return proj_->out(readout(num));
}

Tensor LinearAttentionMixer::step_impl(const Tensor& x_t, State& state) {
  RILL_CHECK(config.causal, "[linear_attention] step needs the causal form");
  Tensor x = x_t.unsqueeze(1);                                                      // [B,1,D]
  Tensor q = feature(proj_->q(x)).squeeze(2), k = feature(proj_->k(x)).squeeze(2);  // [B,H,Dk]
  Tensor v = proj_->v(x).squeeze(2);                                                // [B,H,Dv]
  if (config.normalize) {
    Shape ones_shape = v.shape();
    ones_shape.back() = 1;
    v = concat({v, Tensor::ones(ones_shape, v.dtype())}, -1);
  }
  Tensor s = state.writable("S");
  RILL_CHECK(s.shape() == Shape({x_t.size(0), config.heads, head_dim_, state_cols_}),
             "[linear_attention] state S is {} but this batch needs {}", shape_str(s.shape()),
             shape_str({x_t.size(0), config.heads, head_dim_, state_cols_}));
  Tensor g = log_decay(x);  // [1,H,1] or [B,H,1]: the step form takes [.., H]
  if (g.defined()) g = g.squeeze(2);
  Tensor out = linear_attention_step(q, k, v, s, {g});  // updates S in place
  return proj_->out(readout(out).unsqueeze(2)).squeeze(1);
}

namespace {

std::shared_ptr<Mixer> build(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                             DType dtype) {
  LinearAttentionConfig c;
  c.d_model = d_model, c.seed = seed, c.dtype = dtype;
  JsonFields f(config, "mixer \"linear_attention\"");
  f.ignore("type");
  std::string feature = "elu1", form = "chunked";
  read_heads(f, d_model, c.heads, c.head_dim);
  f.get("feature_map", feature);
  f.get("normalize", c.normalize);
  f.get("eps", c.eps);
  f.check("eps", c.eps, c.eps > 0, "positive");
  f.get("form", form);
  f.get("chunk", c.chunk);
  f.check("chunk", c.chunk, c.chunk > 0 && c.chunk <= 65536, "between 1 and 65536");
  f.get("causal", c.causal);
  std::string decay = "none";
  f.get("decay", decay);
  f.finish();
  c.decay = parse_decay_kind(decay);
  RILL_CHECK(c.causal || c.decay == DecayKind::none,
             "[config] mixer \"linear_attention\": a decay needs the causal form");
  c.feature_map = parse_feature_map(feature);
  RILL_CHECK(form == "chunked" || form == "recurrent",
             "[config] mixer \"linear_attention\": form \"{}\" is not chunked or recurrent", form);
  c.form = form == "chunked" ? LinearAttentionForm::chunked : LinearAttentionForm::recurrent;
  return std::make_shared<LinearAttentionMixer>(c);
}

const MixerRegistration kRegistered({
    "linear_attention",
    "causal linear attention (Katharopoulos et al. 2020): a constant-size state per head",
    build,
    {
        {{"type", "linear_attention"}, {"form", "chunked"}, {"chunk", 64}},
        {{"type", "linear_attention"}, {"form", "recurrent"}},
        {{"type", "linear_attention"}, {"feature_map", "relu"}, {"chunk", 16}},
        {{"type", "linear_attention"}, {"normalize", false}, {"chunk", 32}},
        {{"type", "linear_attention"}, {"local", "shift"}},
        {{"type", "linear_attention"}, {"form", "recurrent"}, {"local", "conv4"}},
        {{"type", "linear_attention"}, {"decay", "retnet"}, {"chunk", 16}},
        {{"type", "linear_attention"}, {"decay", "learned"}, {"form", "recurrent"}},
        {{"type", "linear_attention"}, {"decay", "input"}, {"local", "conv4"}},
    },
});

}  // namespace

}  // namespace rill
