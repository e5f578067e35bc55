// Transformer-XL relative attention over a sliding memory of M inputs: the parallel form over a
// segment with its memory, the step form with a rolling input memory or a rolling KV cache, and
// its registration.
#include "rill/mixers/transformer_xl.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "rill/io/json_fields.h"
#include "rill/mixers/registry.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/matmul.h"
#include "rill/ops/softmax.h"

namespace rill {

namespace {

// R [M+1, D]: row r is Transformer-XL's embedding of distance r, [sin(r f_k), cos(r f_k)] with
// f_k = 10000^(-2k/D), k < D/2.
Tensor sinusoid_table(int64_t memory, int64_t d, DType dtype) {
  Tensor r = Tensor::empty({memory + 1, d}, DType::f64);
  double* p = r.data<double>();
  for (int64_t dist = 0; dist <= memory; ++dist)
    for (int64_t k = 0; k < d / 2; ++k) {
      const double angle = double(dist) * std::pow(10000.0, -2.0 * double(k) / double(d));
      p[dist * d + k] = std::sin(angle);
      p[dist * d + d / 2 + k] = std::cos(angle);
    }
  return r.to(dtype);
}

}  // namespace

TransformerXLMixer::TransformerXLMixer(const TransformerXLConfig& c) : Mixer(c.d_model), config(c) {
  RILL_CHECK(c.heads > 0 && (c.head_dim > 0 || c.d_model % c.heads == 0),
             "[transformer_xl] d_model {} is not divisible by {} heads", c.d_model, c.heads);
  RILL_CHECK(c.d_model % 2 == 0,
             "[transformer_xl] d_model must be even for the sinusoidal distances, got {}",
             c.d_model);
  RILL_CHECK(c.memory > 0, "[transformer_xl] memory must be positive, got {}", c.memory);
  head_dim_ = c.head_dim > 0 ? c.head_dim : c.d_model / c.heads;
  proj_ = register_module(
      "proj", std::make_shared<MultiHeadProjection>(c.d_model, c.heads, head_dim_, head_dim_,
                                                    c.seed, false, c.dtype));
  nn::LinearOptions o;
  o.bias = false;
  o.dtype = c.dtype;
  w_r_ = register_module("w_r", std::make_shared<nn::Linear>(c.d_model, c.heads * head_dim_,
                                                             nn::derive_seed(c.seed, 4), o));
  // DI-engine starts u and v at zero; small random values make every term visible from step 0
  // (and keep the test of the equation honest about them).
  Tensor u = Tensor::empty({c.heads, head_dim_}, c.dtype);
  Tensor v = Tensor::empty({c.heads, head_dim_}, c.dtype);
  nn::normal_(u, 0, 0.02, nn::derive_seed(c.seed, 5));
  nn::normal_(v, 0, 0.02, nn::derive_seed(c.seed, 6));
  u_ = register_parameter("u", u, nn::ParamKind::bias);
  v_ = register_parameter("v", v, nn::ParamKind::bias);
  sinusoid_ = register_buffer("sinusoid", sinusoid_table(c.memory, c.d_model, c.dtype));
}

State TransformerXLMixer::init_state(int64_t batch) const {
  State s;
  if (config.step_mode == StepMode::no_cache) {
    s.set("x", Tensor::zeros({batch, config.memory, config.d_model}, config.dtype));
  } else {
    s.set("k", Tensor::zeros({batch, config.heads, config.memory, head_dim_}, config.dtype));
    s.set("v", Tensor::zeros({batch, config.heads, config.memory, head_dim_}, config.dtype));
  }
  s.set("count", Tensor::zeros({batch}, DType::i64));
  return s;
}

double TransformerXLMixer::mixing_flops_per_token(int64_t) const {
  const double h = double(config.heads), dh = double(head_dim_), m = double(config.memory);
  const double d = double(config.d_model);
  // (q+u).k, (q+v).W_r R and p.v over M + 1 keys, 2 FLOPs per multiply-add.
  double flops = 6.0 * h * dh * (m + 1);
  // no_cache: k and v of the M memory inputs, and W_r R for M + 1 distances, every token.
  if (config.step_mode == StepMode::no_cache) flops += 2.0 * d * h * dh * (2 * m + (m + 1));
  return flops;
}

Tensor TransformerXLMixer::position_keys(bool use_table) {
  const int64_t m1 = config.memory + 1;
  auto compute = [&] {  // [M+1, H*Dh] -> [H, M+1, Dh]
    return w_r_->forward(sinusoid_).view({m1, config.heads, head_dim_}).transpose(0, 1);
  };
  if (!use_table) return compute();
  const Tensor& w = w_r_->weight;
  const size_t bytes = size_t(w.numel()) * dtype_size(w.dtype());
  // The optimiser updates W_r in place, so the table is checked against the weight it was made
  // from (one pass over H*Dh*D values, the cost of one projection, not of M + 1).
  const bool fresh = table_.defined() && table_w_.dtype() == w.dtype() &&
                     std::memcmp(table_w_.data_ptr(), w.contiguous().data_ptr(), bytes) == 0;
  if (!fresh) {
    NoGradGuard no_grad;
    table_ = compute().contiguous();
    table_w_ = w.detach().clone();
  }
  return table_;
}

Tensor TransformerXLMixer::run(const Tensor& x, State* state, bool use_table) {
  check_forward_input(x);
  const int64_t b = x.size(0), t = x.size(1), m = config.memory, h = config.heads;
  const int64_t span = m + t;  // keys: the memory slots, then the segment's tokens
  State fresh;
  if (!state) fresh = init_state(b);
  State& s = state ? *state : fresh;
  const bool no_cache = config.step_mode == StepMode::no_cache;
  auto expect = [&](const char* name, const Shape& shape, DType dtype) {
    RILL_CHECK(s.has(name) && s.get(name).shape() == shape && s.get(name).dtype() == dtype,
               "[transformer_xl] state {} must be {} {} for {} streams, got {}", name,
               shape_str(shape), dtype_name(dtype), b,
               s.has(name) ? shape_str(s.get(name).shape()) + " " + dtype_name(s.get(name).dtype())
                           : "nothing");
  };
  expect("count", {b}, DType::i64);
  if (no_cache) {
    expect("x", {b, m, config.d_model}, config.dtype);
  } else {
    expect("k", {b, h, m, head_dim_}, config.dtype);
    expect("v", {b, h, m, head_dim_}, config.dtype);
  }

  Tensor q = proj_->q(x);  // [B,H,T,Dh]
  Tensor keys, values;     // [B,H,M+T,Dh]
  Tensor all;              // no_cache: [B,M+T,D]
  if (no_cache) {
    all = concat({s.get("x"), x}, 1);
    keys = proj_->k(all);
    values = proj_->v(all);
  } else {
    keys = concat({s.get("k"), proj_->k(x)}, 2);
    values = concat({s.get("v"), proj_->v(x)}, 2);
  }
  Tensor pos_keys = position_keys(use_table);  // [H, M+1, Dh]

  // Query i sits at key index M + i; key j is at distance r = M + i - j, visible when
  // 0 <= r <= M and j is a real token (j >= M - count[b], or j >= M in the segment itself).
  Tensor index = Tensor::empty({1, 1, t, span}, DType::i64);
  Tensor mask = Tensor::empty({b, 1, t, span}, DType::i32);
  {
    int64_t* ip = index.data<int64_t>();
    int32_t* mp = mask.data<int32_t>();
    const Tensor count = s.get("count").contiguous();
    const int64_t* cp = count.data<int64_t>();
    for (int64_t bi = 0; bi < b; ++bi) {
      RILL_CHECK(cp[bi] >= 0 && cp[bi] <= m,
                 "[transformer_xl] state count must be in [0, {}], got {} for stream {}", m, cp[bi],
                 bi);
      for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j < span; ++j) {
          const int64_t r = m + i - j;
          if (bi == 0) ip[i * span + j] = r < 0 ? 0 : (r > m ? m : r);
          mp[(bi * t + i) * span + j] = (r >= 0 && r <= m && j >= m - cp[bi]) ? 0 : 1;
        }
    }
  }
  Tensor content = matmul(add(q, u_.view({h, 1, head_dim_})), keys.transpose(2, 3));  // [B,H,T,M+T]
  Tensor by_dist =
      matmul(add(q, v_.view({h, 1, head_dim_})), pos_keys.transpose(1, 2));          // [B,H,T,M+1]
  Tensor position = gather(by_dist, 3, index.expand({b, h, t, span}).contiguous());  // [B,H,T,M+T]
  Tensor scores = mul(add(content, position), 1.0 / std::sqrt(double(head_dim_)));
  scores = masked_fill(scores, mask, -std::numeric_limits<double>::infinity());
  Tensor y = proj_->out(matmul(softmax(scores, 3), values));  // [B,T,D]

  // The memory rolls: the last M of [memory, segment], no stop-gradient (the trainer detaches).
  if (no_cache) {
    s.set("x", all.narrow(1, t, m).contiguous());
  } else {
    s.set("k", keys.narrow(2, t, m).contiguous());
    s.set("v", values.narrow(2, t, m).contiguous());
  }
  Tensor count = s.get("count").contiguous().clone();
  int64_t* cp = count.data<int64_t>();
  for (int64_t bi = 0; bi < b; ++bi) cp[bi] = std::min(cp[bi] + t, m);
  s.set("count", count);
  return y;
}

Tensor TransformerXLMixer::forward(const Tensor& x, State* state) { return run(x, state, false); }

Tensor TransformerXLMixer::step_impl(const Tensor& x_t, State& state) {
  // kv_cache reads the kept W_r R table; no_cache recomputes it, as GTrXL is coded.
  return run(x_t.unsqueeze(1), &state, config.step_mode == StepMode::kv_cache).squeeze(1);
}

namespace {

std::shared_ptr<Mixer> build(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                             DType dtype) {
  TransformerXLConfig c;
  c.d_model = d_model, c.seed = seed, c.dtype = dtype;
  JsonFields f(config, "mixer \"transformer_xl\"");
  f.ignore("type");
  std::string step_mode = "kv_cache";
  read_heads(f, d_model, c.heads, c.head_dim);
  f.get("memory", c.memory);
  f.check("memory", c.memory, c.memory > 0 && c.memory <= 65536, "between 1 and 65536");
  f.get("step_mode", step_mode);
  f.check("step_mode", step_mode, step_mode == "kv_cache" || step_mode == "no_cache",
          "\"kv_cache\" or \"no_cache\"");
  f.finish();
  c.step_mode = step_mode == "kv_cache" ? StepMode::kv_cache : StepMode::no_cache;
  return std::make_shared<TransformerXLMixer>(c);
}

const MixerRegistration kRegistered({
    "transformer_xl",
    "Transformer-XL relative attention over a sliding memory of M inputs (GTrXL's attention)",
    build,
    {
        {{"type", "transformer_xl"}, {"heads", 2}, {"memory", 8}},
        {{"type", "transformer_xl"}, {"heads", 2}, {"memory", 64}, {"step_mode", "no_cache"}},
        {{"type", "transformer_xl"},
         {"heads", 4},
         {"head_dim", 3},
         {"memory", 5},
         {"local", "shift"}},
    },
});

}  // namespace

}  // namespace rill
