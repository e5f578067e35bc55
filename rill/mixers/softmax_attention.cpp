// Causal softmax attention, the baseline: fused kernel for the parallel form, a KV cache or a
// recomputed prefix for the step form, sliding windows; and its registration.
#include "rill/mixers/softmax_attention.h"

#include "rill/io/json_fields.h"
#include "rill/mixers/registry.h"
#include "rill/nn/init.h"
#include "rill/ops/attention.h"
#include "rill/ops/index.h"

namespace rill {

PositionKind parse_position_kind(const std::string& name) {
  if (name == "none") return PositionKind::none;
  if (name == "rotary") return PositionKind::rotary;
  if (name == "t5") return PositionKind::t5;
  fail("[softmax_attention] unknown positions \"{}\" (none, rotary, t5)", name);
}

StepMode parse_step_mode(const std::string& name) {
  if (name == "kv_cache") return StepMode::kv_cache;
  if (name == "no_cache") return StepMode::no_cache;
  fail("[softmax_attention] unknown step mode \"{}\" (kv_cache, no_cache)", name);
}

SoftmaxAttentionMixer::SoftmaxAttentionMixer(const SoftmaxAttentionConfig& c)
    : Mixer(c.d_model), config(c) {
  RILL_CHECK(c.heads > 0 && (c.head_dim > 0 || c.d_model % c.heads == 0),
             "[softmax_attention] d_model {} is not divisible by {} heads", c.d_model, c.heads);
  RILL_CHECK(c.window >= 0, "[softmax_attention] window must be >= 0, got {}", c.window);
  head_dim_ = c.head_dim > 0 ? c.head_dim : c.d_model / c.heads;
  RILL_CHECK(c.positions != PositionKind::rotary || head_dim_ % 2 == 0,
             "[softmax_attention] rotary positions need an even head_dim, got {}", head_dim_);
  proj_ = register_module(
      "proj", std::make_shared<MultiHeadProjection>(c.d_model, c.heads, head_dim_, head_dim_,
                                                    c.seed, false, c.dtype));
  if (c.positions == PositionKind::t5) {
    Tensor b = Tensor::empty({c.num_buckets, c.heads}, c.dtype);
    nn::normal_(b, 0, 0.1, nn::derive_seed(c.seed, 99));
    rel_bias_ = register_parameter("rel_bias", b, nn::ParamKind::bias);
  }
}

State SoftmaxAttentionMixer::init_state(int64_t batch) const {
  State s;
  if (config.step_mode == StepMode::no_cache) {
    s.set("x", Tensor::zeros({batch, 0, config.d_model}, config.dtype));
  } else {
    s.set("k", Tensor::zeros({batch, config.heads, 0, head_dim_}, config.dtype));
    s.set("v", Tensor::zeros({batch, config.heads, 0, head_dim_}, config.dtype));
    s.set("pos", Tensor::scalar(0, DType::i64));
  }
  return s;
}

// Attention of x's tokens (absolute positions pos, pos+1, ...) over the cached keys and their
// own; returns [B,T,D] and, when asked (k_all, v_all), the keys and values of all of them: the
// cache's buffer with x's appended in place where it can (append), not a copy per token.
Tensor SoftmaxAttentionMixer::attend(const Tensor& x, const Tensor& k_cache, const Tensor& v_cache,
                                     int64_t pos, Tensor* k_all, Tensor* v_all) {
  Tensor q = proj_->q(x), k = proj_->k(x), v = proj_->v(x);  // [B,H,T,Dh]
  if (config.positions == PositionKind::rotary) {
    q = rotary(q, pos, config.rotary_base);
    k = rotary(k, pos, config.rotary_base);
  }
  const int64_t cached = k_cache.defined() ? k_cache.size(2) : 0;
  Tensor keys = k_all ? append(k_cache, k, 2) : cached ? concat({k_cache, k}, 2) : k;
  Tensor values = v_all ? append(v_cache, v, 2) : cached ? concat({v_cache, v}, 2) : v;
  AttentionOptions opt;
  opt.causal = true;
  opt.q_offset = cached;
  opt.window = config.window;
  opt.num_buckets = config.num_buckets;
  opt.max_distance = config.max_distance;
  Tensor out = attention(q, keys, values, opt, rel_bias_);
  if (k_all) *k_all = keys;
  if (v_all) *v_all = values;
  return proj_->out(out);
}

Tensor SoftmaxAttentionMixer::forward(const Tensor& x, State* state) {
  check_forward_input(x);
  if (!state) return attend(x, Tensor(), Tensor(), 0, nullptr, nullptr);
  if (config.step_mode == StepMode::no_cache) {
    // The prefix is recomputed from scratch: attention over [history, x], keep x's outputs.
    Tensor hist = state->has("x") ? state->get("x") : Tensor();
    Tensor all = hist.defined() && hist.size(1) > 0 ? concat({hist, x}, 1) : x;
    Tensor y = attend(all, Tensor(), Tensor(), 0, nullptr, nullptr);
    state->set("x", all);
    return y.narrow(1, all.size(1) - x.size(1), x.size(1));
  }
  const int64_t pos = state->has("pos") ? state->get("pos").item<int64_t>() : 0;
  Tensor kc = state->has("k") ? state->get("k") : Tensor();
  Tensor vc = state->has("v") ? state->get("v") : Tensor();
  Tensor keys, values;
  Tensor y = attend(x, kc, vc, pos, &keys, &values);
  if (config.window > 0 && keys.size(2) > config.window) {  // the bounded cache of a window
    // Views of the last `window`: the next append writes after them in the same buffer, and
    // copies only these into a new one when it is full (so the buffer stays near the window).
    keys = keys.narrow(2, keys.size(2) - config.window, config.window);
    values = values.narrow(2, values.size(2) - config.window, config.window);
  }
  state->set("k", keys);
  state->set("v", values);
  state->set("pos", Tensor::scalar(double(pos + x.size(1)), DType::i64));
  return y;
}

Tensor SoftmaxAttentionMixer::step_impl(const Tensor& x_t, State& state) {
  return forward(x_t.unsqueeze(1), &state).squeeze(1);
}

namespace {

std::shared_ptr<Mixer> build(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                             DType dtype) {
  SoftmaxAttentionConfig c;
  c.d_model = d_model, c.seed = seed, c.dtype = dtype;
  JsonFields f(config, "mixer \"softmax_attention\"");
  f.ignore("type");
  std::string positions = "rotary", step_mode = "kv_cache";
  read_heads(f, d_model, c.heads, c.head_dim);
  f.get("positions", positions);
  f.get("rotary_base", c.rotary_base);
  f.check("rotary_base", c.rotary_base, c.rotary_base > 1, "above 1");
  f.get("num_buckets", c.num_buckets);
  f.check("num_buckets", c.num_buckets, c.num_buckets > 0 && c.num_buckets <= 4096,
          "between 1 and 4096");
  f.get("max_distance", c.max_distance);
  f.check("max_distance", c.max_distance, c.max_distance > 0, "positive");
  f.get("window", c.window);
  f.check("window", c.window, c.window >= 0, "0 (no window) or positive");
  f.get("step_mode", step_mode);
  f.finish();
  c.positions = parse_position_kind(positions);
  c.step_mode = parse_step_mode(step_mode);
  return std::make_shared<SoftmaxAttentionMixer>(c);
}

const MixerRegistration kRegistered({
    "softmax_attention",
    "causal softmax attention: fused parallel kernel, KV cache or recomputation, sliding window",
    build,
    {
        {{"type", "softmax_attention"}, {"positions", "rotary"}},
        {{"type", "softmax_attention"}, {"positions", "t5"}},
        {{"type", "softmax_attention"}, {"positions", "none"}, {"window", 64}},
        {{"type", "softmax_attention"},
         {"positions", "rotary"},
         {"window", 64},
         {"local", "conv2"}},
        {{"type", "softmax_attention"}, {"step_mode", "no_cache"}},
    },
});

}  // namespace

}  // namespace rill
