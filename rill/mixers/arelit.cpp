// AReLiT: the mixer (gated features, the three linear scans, the cosine read-out, W_o), its step,
// its native resets, and its registration.
#include "rill/mixers/arelit.h"

#include <cmath>
#include <numbers>

#include "rill/io/json_fields.h"
#include "rill/mixers/multi_head.h"
#include "rill/mixers/registry.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/linear_scan.h"
#include "rill/ops/reduce.h"

namespace rill {

ArelitMode parse_arelit_mode(const std::string& name) {
  if (name == "distinct") return ArelitMode::distinct;
  if (name == "reference") return ArelitMode::reference;
  fail("[arelit] unknown mode \"{}\" (distinct, reference)", name);
}

namespace {

Tensor one_minus(const Tensor& t) { return add(neg(t), 1.0); }

}  // namespace

ArelitMixer::ArelitMixer(const ArelitConfig& c) : Mixer(c.d_model), config(c) {
  RILL_CHECK(c.heads > 0 && (c.head_dim > 0 || c.d_model % c.heads == 0),
             "[arelit] d_model {} is not divisible by {} heads", c.d_model, c.heads);
  RILL_CHECK(c.r > 0 && c.eta > 0 && c.eps > 0, "[arelit] r {}, eta {} and eps {} must be positive",
             c.r, c.eta, c.eps);
  head_dim_ = c.head_dim > 0 ? c.head_dim : c.d_model / c.heads;
  const double pi = std::numbers::pi;
  omega_.resize(static_cast<size_t>(c.r));
  if (c.mode == ArelitMode::reference) {
    // numpy's linspace(-π, π, r); with r = 1 it is [-π]. Period of every cos(ω τ): 2(r-1) (2).
    for (int64_t l = 0; l < c.r; ++l) omega_[l] = c.r == 1 ? -pi : -pi + 2 * pi * l / (c.r - 1);
    period_ = c.r == 1 ? 2 : 2 * (c.r - 1);
    c_ = 2.0 * c.r;
    tick0_ = 1;
  } else {
    for (int64_t l = 0; l < c.r; ++l) omega_[l] = pi * (l + 0.5) / c.r;
    period_ = 4 * c.r;  // ω_l · 4r = 2π(2l + 1)
    c_ = c.r / 2.0;
    tick0_ = 0;
  }
  GatedFeaturesConfig fc;
  fc.d_model = c.d_model, fc.heads = c.heads, fc.head_dim = head_dim_, fc.eta = c.eta;
  fc.seed = c.seed, fc.dtype = c.dtype;
  features_ = register_module("features", std::make_shared<GatedFeatures>(fc));
}

double ArelitMixer::mixing_flops_per_token(int64_t) const {
  const double f = double(config.eta) * head_dim_, d = double(head_dim_), r = double(config.r);
  // The updates (3 flops an element) and the read-out (k̃·φ(q), Σ_l ṽ^l (.), s·φ(q)).
  return config.heads * (3.0 * (r * (f + d) + f) + 2.0 * (r * f + r * d + f));
}

State ArelitMixer::init_state(int64_t batch) const {
  const int64_t h = config.heads, f = config.eta * head_dim_;
  State s;
  s.set("v", Tensor::zeros({batch, h, config.r, head_dim_}, config.dtype));
  s.set("k", Tensor::zeros({batch, h, config.r, f}, config.dtype));
  s.set("s", Tensor::zeros({batch, h, f}, config.dtype));
  s.set("tick", Tensor::full({batch}, double(tick0_), DType::i64));
  return s;
}

void ArelitMixer::check_state(const State& s, int64_t batch) const {
  const int64_t h = config.heads, f = config.eta * head_dim_;
  const std::pair<const char*, Shape> want[] = {{"v", {batch, h, config.r, head_dim_}},
                                                {"k", {batch, h, config.r, f}},
                                                {"s", {batch, h, f}},
                                                {"tick", {batch}}};
  for (const auto& [name, shape] : want) {
    const Tensor t = s.get(name);
    RILL_CHECK(t.shape() == shape, "[arelit] state {} is {} but this batch needs {}", name,
               shape_str(t.shape()), shape_str(shape));
  }
  RILL_CHECK(s.get("tick").dtype() == DType::i64, "[arelit] state tick must be i64, got {}",
             dtype_name(s.get("tick").dtype()));
}

std::vector<double> ArelitMixer::cos_table(const std::vector<int64_t>& ticks) const {
  const int64_t r = config.r;
  std::vector<double> out(ticks.size() * r);
  for (size_t i = 0; i < ticks.size(); ++i) {
    const int64_t tau = ((ticks[i] % period_) + period_) % period_;
    for (int64_t l = 0; l < r; ++l) out[i * r + l] = std::cos(omega_[l] * double(tau));
  }
  return out;
}

Tensor ArelitMixer::forward(const Tensor& x, State* state) {
  check_forward_input(x);
  return forward_impl(x, state, Tensor());
}

Tensor ArelitMixer::forward_native_resets(const Tensor& x, State* state, const Tensor& resets) {
  return forward_impl(x, state, resets);
}

Tensor ArelitMixer::forward_impl(const Tensor& x, State* state, const Tensor& resets) {
  const int64_t b = x.size(0), len = x.size(1), r = config.r;
  const bool carried = state && !state->empty();
  if (carried) check_state(*state, b);
  // The ticks τ [B,T] (host side: they are integers, not differentiable) and the final tick.
  std::vector<int64_t> tick(static_cast<size_t>(b), tick0_);
  if (carried) tick = state->get("tick").to_vector<int64_t>();
  const std::vector<double> cut =
      resets.defined() ? resets.to_vector<double>() : std::vector<double>();
  std::vector<int64_t> tau(static_cast<size_t>(b * len));
  for (int64_t i = 0; i < b; ++i)
    for (int64_t t = 0; t < len; ++t) {
      if (!cut.empty() && cut[i * len + t] != 0) tick[i] = tick0_;  // a fresh stream from t on
      tau[i * len + t] = ++tick[i];
    }
  const Tensor cosines =
      Tensor::from_vector(cos_table(tau), {b, len, 1, r, 1}).to(x.dtype());  // [B,T,1,r,1]

  const GatedFeatureTensors f = features_->forward(x);                  // [B,H,T,·]
  auto time_major = [](const Tensor& t) { return t.transpose(1, 2); };  // -> [B,T,H,·]
  Tensor beta = time_major(f.beta), gamma = time_major(f.gamma);
  Tensor bv = mul(beta, time_major(f.v));       // [B,T,H,d]
  Tensor gk = mul(gamma, time_major(f.phi_k));  // [B,T,H,F]
  Tensor decay_v = one_minus(beta), decay_k = one_minus(gamma);
  if (resets.defined()) {  // a reset is a decay of exactly 0 at its step
    Tensor keep = one_minus(resets).view({b, len, 1, 1});
    decay_v = mul(decay_v, keep), decay_k = mul(decay_k, keep);
  }
  Tensor v0, k0, s0;
  if (carried) v0 = state->get("v"), k0 = state->get("k"), s0 = state->get("s");
  // [B,T,H,r,d], [B,T,H,r,F], [B,T,H,F]: every step's components; the decays broadcast over r.
  Tensor vt = linear_scan(decay_v.unsqueeze(3), mul(cosines, bv.unsqueeze(3)), v0);
  Tensor kt = linear_scan(decay_k.unsqueeze(3), mul(cosines, gk.unsqueeze(3)), k0);
  Tensor st = linear_scan(decay_k, gk, s0);
  Tensor q = time_major(f.phi_q);                                     // [B,T,H,F]
  Tensor kq = sum(mul(kt, q.unsqueeze(3)), {4});                      // [B,T,H,r]
  Tensor num = sum(mul(vt, kq.unsqueeze(4)), {3});                    // [B,T,H,d]
  Tensor den = add(mul(sum(mul(st, q), {3}, true), c_), config.eps);  // [B,T,H,1]
  Tensor y = features_->out(div(num, den));                           // [B,T,D]
  if (state && len > 0) {
    state->set("v", vt.select(1, len - 1).contiguous());
    state->set("k", kt.select(1, len - 1).contiguous());
    state->set("s", st.select(1, len - 1).contiguous());
    state->set("tick", Tensor::from_vector(tick, {b}));
  }
  return y;
}

Tensor ArelitMixer::step_impl(const Tensor& x_t, State& state) {
  const int64_t b = x_t.size(0), r = config.r;
  check_state(state, b);
  std::vector<int64_t> tick = state.get("tick").to_vector<int64_t>();
  for (int64_t& t : tick) ++t;
  const Tensor cosines = Tensor::from_vector(cos_table(tick), {b, 1, r, 1}).to(x_t.dtype());
  const GatedFeatureTensors f = features_->step(x_t);  // [B,H,·]
  Tensor gk = mul(f.gamma, f.phi_k);                   // [B,H,F]
  Tensor v = add(mul(one_minus(f.beta).unsqueeze(2), state.get("v")),
                 mul(cosines, mul(f.beta, f.v).unsqueeze(2)));  // [B,H,r,d]
  Tensor k = add(mul(one_minus(f.gamma).unsqueeze(2), state.get("k")),
                 mul(cosines, gk.unsqueeze(2)));                           // [B,H,r,F]
  Tensor s = add(mul(one_minus(f.gamma), state.get("s")), gk);             // [B,H,F]
  Tensor kq = sum(mul(k, f.phi_q.unsqueeze(2)), {3});                      // [B,H,r]
  Tensor num = sum(mul(v, kq.unsqueeze(3)), {2});                          // [B,H,d]
  Tensor den = add(mul(sum(mul(s, f.phi_q), {2}, true), c_), config.eps);  // [B,H,1]
  state.set("v", v), state.set("k", k), state.set("s", s);
  state.set("tick", Tensor::from_vector(tick, {b}));
  return features_->out(div(num, den));  // [B,D]
}

namespace {

std::shared_ptr<Mixer> build(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                             DType dtype) {
  ArelitConfig c;
  c.d_model = d_model, c.seed = seed, c.dtype = dtype;
  JsonFields f(config, "mixer \"arelit\"");
  f.ignore("type");
  read_heads(f, d_model, c.heads, c.head_dim);
  f.get("eta", c.eta);
  f.check("eta", c.eta, c.eta >= 1 && c.eta <= 64, "between 1 and 64");
  f.get("r", c.r);
  f.check("r", c.r, c.r >= 1 && c.r <= 1024, "between 1 and 1024");
  std::string mode = "distinct";
  f.get("mode", mode);
  f.get("eps", c.eps);
  f.check("eps", c.eps, c.eps > 0, "positive");
  f.finish();
  RILL_CHECK(mode == "distinct" || mode == "reference",
             "[config] mixer \"arelit\": mode \"{}\" is not distinct or reference", mode);
  c.mode = parse_arelit_mode(mode);
  return std::make_shared<ArelitMixer>(c);
}

const MixerRegistration kRegistered({
    "arelit",
    "AReLiT (Pramanik et al. 2023): gated linear attention approximated by r cosine components",
    build,
    {
        {{"type", "arelit"}, {"heads", 2}, {"eta", 2}, {"r", 4}},
        {{"type", "arelit"}, {"heads", 2}, {"eta", 4}, {"r", 2}, {"mode", "reference"}},
        {{"type", "arelit"}, {"heads", 2}, {"eta", 4}, {"r", 8}, {"local", "shift"}},
    },
});

}  // namespace

}  // namespace rill
