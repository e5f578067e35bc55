// The Aaren mixer: a learned query, folded keys, the softmax scan; and its registration.
#include "rill/mixers/aaren.h"

#include <cmath>
#include <limits>

#include "rill/io/json_fields.h"
#include "rill/mixers/registry.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax_scan.h"

namespace rill {

AarenMixer::AarenMixer(const AarenConfig& c) : Mixer(c.d_model), config(c) {
  RILL_CHECK(c.heads > 0 && (c.head_dim > 0 || c.d_model % c.heads == 0),
             "[aaren] d_model {} is not divisible by {} heads", c.d_model, c.heads);
  head_dim_ = c.head_dim > 0 ? c.head_dim : c.d_model / c.heads;
  proj_ = register_module(
      "proj", std::make_shared<MultiHeadProjection>(c.d_model, c.heads, head_dim_, head_dim_,
                                                    c.seed, c.bias, c.dtype));
  // q plays the part of a token: unit scale per feature, like a normalised input.
  Tensor q = Tensor::empty({c.d_model}, c.dtype);
  nn::normal_(q, 0, 1, nn::derive_seed(c.seed, 7));
  query_ = register_parameter("query", q, nn::ParamKind::embedding);
}

State AarenMixer::init_state(int64_t batch) const {
  State s;
  s.set("lse", Tensor::full({batch, config.heads}, -std::numeric_limits<double>::infinity(),
                            config.dtype));
  s.set("o", Tensor::zeros({batch, config.heads, head_dim_}, config.dtype));
  return s;
}

void AarenMixer::check_state(const State& s, int64_t batch) const {
  const Shape want_lse{batch, config.heads}, want_o{batch, config.heads, head_dim_};
  for (const auto& [name, want] : {std::pair{"lse", want_lse}, std::pair{"o", want_o}})
    RILL_CHECK(s.has(name) && s.get(name).shape() == want && s.get(name).dtype() == config.dtype,
               "[aaren] state {} must be {} {}, got {}", name, shape_str(want),
               dtype_name(config.dtype),
               s.has(name) ? shape_str(s.get(name).shape()) : std::string("nothing"));
}

std::pair<Tensor, Tensor> AarenMixer::score_weights() const {
  const int64_t h = config.heads, d = config.d_model;
  const nn::Linear& wq = proj_->q_proj();
  const nn::Linear& wk = proj_->k_proj();
  const double scale = 1.0 / std::sqrt(double(head_dim_));
  Tensor qh = wq.forward(query_.view({1, d})).view({h, head_dim_, 1});  // q~ per head
  Tensor u = mul(sum(mul(wk.weight.view({h, head_dim_, d}), qh), {1}), scale);
  if (!wk.bias.defined()) return {u, Tensor()};
  return {u, mul(sum(mul(wk.bias.view({h, head_dim_}), qh.view({h, head_dim_})), {1}), scale)};
}

Tensor AarenMixer::run(const Tensor& x, State* state, const Tensor& resets) {
  const int64_t b = x.size(0);
  if (state) check_state(*state, b);
  const auto [u, c] = score_weights();
  Tensor s = matmul(x, u.transpose(0, 1));  // [B,T,H]
  if (c.defined()) s = add(s, c);
  s = s.transpose(1, 2);   // [B,H,T]
  Tensor v = proj_->v(x);  // [B,H,T,d]
  SoftmaxScanResult r = state ? softmax_scan(s, v, state->get("lse"), state->get("o"), resets)
                              : softmax_scan(s, v, Tensor(), Tensor(), resets);
  if (state) {
    const int64_t last = x.size(1) - 1;
    state->set("lse", r.lse.select(2, last));
    state->set("o", r.out.select(2, last));
  }
  return proj_->out(r.out);
}

Tensor AarenMixer::forward(const Tensor& x, State* state) {
  check_forward_input(x);
  return run(x, state, Tensor());
}

Tensor AarenMixer::forward_native_resets(const Tensor& x, State* state, const Tensor& resets) {
  return run(x, state, resets);
}

Tensor AarenMixer::step_impl(const Tensor& x_t, State& state) {
  return run(x_t.unsqueeze(1), &state, Tensor()).squeeze(1);
}

namespace {

std::shared_ptr<Mixer> build(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                             DType dtype) {
  AarenConfig c;
  c.d_model = d_model, c.seed = seed, c.dtype = dtype;
  JsonFields f(config, "mixer \"aaren\"");
  f.ignore("type");
  read_heads(f, d_model, c.heads, c.head_dim);
  f.get("bias", c.bias);
  f.finish();
  return std::make_shared<AarenMixer>(c);
}

const MixerRegistration kRegistered({
    "aaren",
    "Aaren (Feng et al. 2024): attention of a learned query as an RNN, by a parallel softmax "
    "prefix scan; state d+1 per head",
    build,
    {{{"type", "aaren"}, {"heads", 2}},
     {{"type", "aaren"}, {"heads", 4}, {"bias", true}},
     {{"type", "aaren"}, {"heads", 2}, {"head_dim", 6}, {"local", "conv4"}}},
});

}  // namespace

}  // namespace rill
