// ReLiT: the gated features around the gated-state op (factorised) or an elementwise linear scan
// (projected_sigmoid), and the registration.
#include "rill/mixers/relit.h"

#include "rill/io/json_fields.h"
#include "rill/mixers/multi_head.h"
#include "rill/mixers/registry.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/linear_scan.h"
#include "rill/ops/reduce.h"

namespace rill {

namespace {

Tensor one_minus(const Tensor& t) { return add(neg(t), 1.0); }
// log(max(1 - g, 1e-6)): the log-decay of a gate g in (0, 1), finite when g saturates to 1.
Tensor log_keep(const Tensor& g) { return log(clamp(one_minus(g), 1e-6, 1.0)); }

}  // namespace

RelitUpdate parse_relit_update(const std::string& name) {
  if (name == "factorised") return RelitUpdate::factorised;
  if (name == "projected_sigmoid") return RelitUpdate::projected_sigmoid;
  fail("[config] mixer \"relit\": update \"{}\" is not factorised or projected_sigmoid", name);
}

RelitMixer::RelitMixer(const RelitConfig& c) : Mixer(c.d_model), config(c) {
  RILL_CHECK(c.heads > 0 && (c.head_dim > 0 || c.d_model % c.heads == 0),
             "[relit] d_model {} is not divisible by {} heads", c.d_model, c.heads);
  RILL_CHECK(c.chunk > 0, "[relit] chunk must be positive, got {}", c.chunk);
  head_dim_ = c.head_dim > 0 ? c.head_dim : c.d_model / c.heads;
  features_dim_ = c.eta * head_dim_;
  GatedFeaturesConfig fc;
  fc.d_model = c.d_model, fc.heads = c.heads, fc.head_dim = head_dim_, fc.eta = c.eta;
  fc.seed = c.seed, fc.dtype = c.dtype;
  features_ = register_module("features", std::make_shared<GatedFeatures>(fc));
}

double RelitMixer::mixing_flops_per_token(int64_t) const {
  // The state update (decay, write: 3 flops an element) and the read-out (2 an element).
  return config.heads * 5.0 * double(features_dim_) * double(head_dim_ + 1);
}

std::vector<std::pair<std::string, Shape>> RelitMixer::state_shapes(int64_t batch) const {
  const int64_t h = config.heads, f = features_dim_, d = head_dim_;
  if (config.update == RelitUpdate::factorised) return {{"S", {batch, h, f, d + 1}}};
  return {{"C", {batch, h, d, f}}, {"s", {batch, h, f}}};
}

State RelitMixer::init_state(int64_t batch) const {
  State s;
  for (const auto& [name, shape] : state_shapes(batch))
    s.set(name, Tensor::zeros(shape, config.dtype));
  return s;
}

void RelitMixer::check_state(const State& s, int64_t batch) const {
  for (const auto& [name, shape] : state_shapes(batch)) {
    const Tensor have = s.get(name);
    RILL_CHECK(have.shape() == shape, "[relit] state {} is {} but this batch needs {}", name,
               shape_str(have.shape()), shape_str(shape));
  }
}

Tensor RelitMixer::forward(const Tensor& x, State* state) {
  check_forward_input(x);
  return config.update == RelitUpdate::factorised ? forward_factorised(x, state, Tensor())
                                                  : forward_projected(x, state, Tensor());
}

Tensor RelitMixer::forward_native_resets(const Tensor& x, State* state, const Tensor& resets) {
  return config.update == RelitUpdate::factorised ? forward_factorised(x, state, resets)
                                                  : forward_projected(x, state, resets);
}

Tensor RelitMixer::forward_factorised(const Tensor& x, State* state, const Tensor& resets) {
  const int64_t b = x.size(0), len = x.size(1), h = config.heads, d = head_dim_;
  const bool carried = state && !state->empty();
  if (carried) check_state(*state, b);
  const GatedFeatureTensors f = features_->forward(x);  // [B,H,T,·]
  Tensor keys = mul(f.gamma, f.phi_k);                  // [B,H,T,F]
  Tensor ones = Tensor::ones({b, h, len, 1}, x.dtype());
  Tensor values = concat({mul(f.beta, f.v), ones}, 3);  // [B,H,T,d+1]
  Tensor zeros = Tensor::zeros({b, h, len, 1}, x.dtype());
  Tensor gb = concat({log_keep(f.beta), zeros}, 3);  // [B,H,T,d+1]: s has no value-side decay
  auto [num, s_final] =
      causal_linear_attention(f.phi_q, keys, values, carried ? state->get("S") : Tensor(),
                              {Tensor(), log_keep(f.gamma), gb, resets}, config.form, config.chunk);
  if (state) state->set("S", s_final);
  Tensor o = div(num.narrow(3, 0, d), add(num.narrow(3, d, 1), config.eps));  // [B,H,T,d]
  return features_->out(o.transpose(1, 2));                                   // [B,T,D]
}

Tensor RelitMixer::forward_projected(const Tensor& x, State* state, const Tensor& resets) {
  const int64_t b = x.size(0), len = x.size(1);
  const bool carried = state && !state->empty();
  if (carried) check_state(*state, b);
  const GatedFeatureTensors f = features_->forward(x);                         // [B,H,T,·]
  auto time_major = [](const Tensor& t) { return t.transpose(1, 2); };         // -> [B,T,H,·]
  Tensor beta = time_major(f.beta).unsqueeze(4), gamma = time_major(f.gamma);  // [B,T,H,d,1]
  Tensor gate = mul(beta, gamma.unsqueeze(3));                                 // [B,T,H,d,F]
  Tensor write = mul(gate, mul(time_major(f.v).unsqueeze(4), time_major(f.phi_k).unsqueeze(3)));
  Tensor keep_c = one_minus(gate), keep_s = one_minus(gamma);
  if (resets.defined()) {             // a reset is a decay of exactly 0 at its step
    Tensor keep = one_minus(resets);  // [B,T]
    keep_c = mul(keep_c, keep.view({b, len, 1, 1, 1}));
    keep_s = mul(keep_s, keep.view({b, len, 1, 1}));
  }
  Tensor ct = linear_scan(keep_c, write, carried ? state->get("C") : Tensor());  // [B,T,H,d,F]
  Tensor st = linear_scan(keep_s, mul(gamma, time_major(f.phi_k)),
                          carried ? state->get("s") : Tensor());  // [B,T,H,F]
  Tensor q = time_major(f.phi_q);                                 // [B,T,H,F]
  Tensor num = sum(mul(ct, q.unsqueeze(3)), {4});                 // [B,T,H,d]
  Tensor den = add(sum(mul(st, q), {3}, true), config.eps);       // [B,T,H,1]
  if (state && len > 0) {
    state->set("C", ct.select(1, len - 1).contiguous());
    state->set("s", st.select(1, len - 1).contiguous());
  }
  return features_->out(div(num, den));
}

Tensor RelitMixer::step_impl(const Tensor& x_t, State& state) {
  const int64_t b = x_t.size(0), h = config.heads, d = head_dim_;
  check_state(state, b);
  const GatedFeatureTensors f = features_->step(x_t);  // [B,H,·]
  if (config.update == RelitUpdate::factorised) {
    Tensor s = state.writable("S");
    Tensor values = concat({mul(f.beta, f.v), Tensor::ones({b, h, 1}, x_t.dtype())}, 2);
    Tensor gb = concat({log_keep(f.beta), Tensor::zeros({b, h, 1}, x_t.dtype())}, 2);
    Tensor num = linear_attention_step(f.phi_q, mul(f.gamma, f.phi_k), values, s,
                                       {Tensor(), log_keep(f.gamma), gb});  // [B,H,d+1]
    Tensor o = div(num.narrow(2, 0, d), add(num.narrow(2, d, 1), config.eps));
    return features_->out(o);
  }
  Tensor gate = mul(f.beta.unsqueeze(3), f.gamma.unsqueeze(2));  // [B,H,d,F]
  Tensor c = add(mul(one_minus(gate), state.get("C")),
                 mul(gate, mul(f.v.unsqueeze(3), f.phi_k.unsqueeze(2))));
  Tensor s = add(mul(one_minus(f.gamma), state.get("s")), mul(f.gamma, f.phi_k));  // [B,H,F]
  Tensor num = sum(mul(c, f.phi_q.unsqueeze(2)), {3});                             // [B,H,d]
  Tensor den = add(sum(mul(s, f.phi_q), {2}, true), config.eps);
  state.set("C", c), state.set("s", s);
  return features_->out(div(num, den));
}

namespace {

std::shared_ptr<Mixer> build(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                             DType dtype) {
  RelitConfig c;
  c.d_model = d_model, c.seed = seed, c.dtype = dtype;
  JsonFields f(config, "mixer \"relit\"");
  f.ignore("type");
  read_heads(f, d_model, c.heads, c.head_dim);
  f.get("eta", c.eta);
  f.check("eta", c.eta, c.eta >= 1 && c.eta <= 64, "between 1 and 64");
  std::string update = "factorised", form;
  f.get("update", update);
  f.get("form", form);
  f.get("chunk", c.chunk);
  f.check("chunk", c.chunk, c.chunk >= 1 && c.chunk <= 65536, "between 1 and 65536");
  f.get("eps", c.eps);
  f.check("eps", c.eps, c.eps > 0, "positive");
  f.finish();
  c.update = parse_relit_update(update);
  RILL_CHECK(form.empty() || c.update == RelitUpdate::factorised,
             "[config] mixer \"relit\": form \"{}\" applies to the factorised update only "
             "(projected_sigmoid runs as an elementwise linear scan)",
             form);
  if (form.empty()) form = "chunked";
  RILL_CHECK(form == "chunked" || form == "recurrent",
             "[config] mixer \"relit\": form \"{}\" is not chunked or recurrent", form);
  c.form = form == "chunked" ? LinearAttentionForm::chunked : LinearAttentionForm::recurrent;
  return std::make_shared<RelitMixer>(c);
}

const MixerRegistration kRegistered({
    "relit",
    "ReLiT (Pramanik et al. 2023): gated linear attention with a learned outer-product feature "
    "map, on the gated-state op",
    build,
    {{{"type", "relit"}, {"heads", 2}, {"eta", 2}, {"chunk", 16}},
     {{"type", "relit"}, {"heads", 2}, {"eta", 1}, {"form", "recurrent"}},
     {{"type", "relit"}, {"heads", 2}, {"eta", 2}, {"update", "projected_sigmoid"}},
     {{"type", "relit"}, {"heads", 2}, {"eta", 3}, {"chunk", 32}, {"local", "shift"}}},
});

}  // namespace

}  // namespace rill
