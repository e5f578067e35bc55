#include "rill/models/language_model.h"

#include "rill/autograd/grad_mode.h"
#include "rill/io/json_fields.h"
#include "rill/mixers/registry.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"
#include "rill/ops/softmax.h"

namespace rill {

using nlohmann::json;

LMConfig LMConfig::from_json(const json& j) {
  LMConfig c;
  JsonFields f(j, "the model config");
  std::string dtype = "f32";
  f.get("vocab", c.vocab);
  f.get("d_model", c.d_model);
  f.get("n_layers", c.n_layers);
  f.get("mlp_hidden", c.mlp_hidden);
  f.get("mlp", c.mlp);
  f.get("norm", c.norm);
  f.get("tie_embeddings", c.tie_embeddings);
  f.get("dropout", c.dropout);
  f.get("seed", c.seed);
  f.get("dtype", dtype);
  if (const json* m = f.raw("mixers")) {
    RILL_CHECK(m->is_array() && !m->empty(), "[config] \"mixers\" must be a non-empty array");
    c.mixers.assign(m->begin(), m->end());
  }
  f.finish();
  RILL_CHECK(c.vocab > 0 && c.d_model > 0 && c.n_layers > 0 && c.mlp_hidden > 0,
             "[config] vocab, d_model, n_layers and mlp_hidden must be positive");
  RILL_CHECK(c.mlp == "gelu" || c.mlp == "swiglu", "[config] mlp \"{}\" is not gelu or swiglu",
             c.mlp);
  RILL_CHECK(c.norm == "layer" || c.norm == "rms", "[config] norm \"{}\" is not layer or rms",
             c.norm);
  RILL_CHECK(c.dropout >= 0 && c.dropout < 1, "[config] dropout {} is not in [0, 1)", c.dropout);
  RILL_CHECK(dtype == "f32" || dtype == "f64", "[config] dtype \"{}\" is not f32 or f64", dtype);
  c.dtype = dtype == "f64" ? DType::f64 : DType::f32;
  RILL_CHECK(c.mixers.size() == 1 || static_cast<int64_t>(c.mixers.size()) == c.n_layers,
             "[config] {} mixers given for {} layers (give one, or one per layer)", c.mixers.size(),
             c.n_layers);
  return c;
}

json LMConfig::to_json() const {
  return {{"vocab", vocab},
          {"d_model", d_model},
          {"n_layers", n_layers},
          {"mlp_hidden", mlp_hidden},
          {"mlp", mlp},
          {"norm", norm},
          {"tie_embeddings", tie_embeddings},
          {"dropout", dropout},
          {"seed", seed},
          {"dtype", dtype_name(dtype)},
          {"mixers", mixers}};
}

namespace {

std::shared_ptr<nn::Module> make_norm(const LMConfig& c) {
  if (c.norm == "rms") return std::make_shared<nn::RMSNorm>(c.d_model, 1e-6, c.dtype);
  return std::make_shared<nn::LayerNorm>(c.d_model, 1e-5, true, c.dtype);
}

}  // namespace

Block::Block(const LMConfig& c, const json& mixer_config, uint64_t seed) {
  norm1 = register_module("norm1", make_norm(c));
  mixer = register_module("mixer",
                          make_mixer(mixer_config, c.d_model, nn::derive_seed(seed, 0), c.dtype));
  norm2 = register_module("norm2", make_norm(c));
  mlp = register_module(
      "mlp", std::make_shared<nn::MLP>(c.d_model, c.mlp_hidden,
                                       c.mlp == "swiglu" ? nn::MLPKind::swiglu : nn::MLPKind::gelu,
                                       nn::derive_seed(seed, 1), true, c.dtype));
  if (c.dropout > 0)
    drop =
        register_module("drop", std::make_shared<nn::Dropout>(c.dropout, nn::derive_seed(seed, 2)));
}

Tensor apply_norm(const std::shared_ptr<nn::Module>& n, const Tensor& x) {
  if (auto ln = std::dynamic_pointer_cast<nn::LayerNorm>(n)) return ln->forward(x);
  return std::static_pointer_cast<nn::RMSNorm>(n)->forward(x);
}

Tensor Block::forward(const Tensor& x, State* state) {
  Tensor a = mixer->forward(apply_norm(norm1, x), state);
  if (drop) a = drop->forward(a);
  Tensor h = add(x, a);
  Tensor m = mlp->forward(apply_norm(norm2, h));
  if (drop) m = drop->forward(m);
  return add(h, m);
}

Tensor Block::step(const Tensor& x, State& state) {
  Tensor h = add(x, mixer->step(apply_norm(norm1, x), state));
  return add(h, mlp->forward(apply_norm(norm2, h)));
}

LanguageModel::LanguageModel(const LMConfig& c) : config(c) {
  embed =
      register_module("embed", std::make_shared<nn::Embedding>(
                                   c.vocab, c.d_model, nn::derive_seed(c.seed, 0), 0.02, c.dtype));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const json& m = c.mixers.size() == 1 ? c.mixers[0] : c.mixers[i];
    blocks.push_back(
        register_module("layers." + std::to_string(i),
                        std::make_shared<Block>(c, m, nn::derive_seed(c.seed, 100 + i))));
  }
  final_norm = register_module("final_norm", make_norm(c));
  if (!c.tie_embeddings) {
    nn::LinearOptions o;
    o.bias = false;
    o.dtype = c.dtype;
    o.init = nn::LinearInit::normal;
    o.std = 0.02;
    head = register_module(
        "head", std::make_shared<nn::Linear>(c.d_model, c.vocab, nn::derive_seed(c.seed, 1), o));
  }
}

State LanguageModel::init_state(int64_t batch) const {
  State s;
  for (size_t i = 0; i < blocks.size(); ++i)
    s.insert("layers." + std::to_string(i), blocks[i]->mixer->init_state(batch));
  return s;
}

Tensor LanguageModel::logits(const Tensor& h) const {
  Tensor n = apply_norm(final_norm, h);
  return head ? head->forward(n) : matmul(n, embed->weight.transpose(0, 1));
}

Tensor LanguageModel::forward(const Tensor& ids, State* state) {
  RILL_CHECK(ids.defined() && ids.dim() == 2, "[language_model] ids must be [B, T], got {}",
             ids.defined() ? shape_str(ids.shape()) : "undefined");
  Tensor h = embed->forward(ids);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (state) {
      const std::string p = "layers." + std::to_string(i);
      State s = state->sub(p);
      h = blocks[i]->forward(h, &s);
      state->insert(p, s);
    } else {
      h = blocks[i]->forward(h, nullptr);
    }
  }
  return logits(h);
}

Tensor LanguageModel::loss(const Tensor& ids, const Tensor& targets, State* state) {
  Tensor lg = forward(ids, state);
  return cross_entropy(lg.reshape({-1, config.vocab}), targets.reshape({-1}));
}

Tensor LanguageModel::step(const Tensor& ids, State& state) {
  NoGradGuard no_grad;
  RILL_CHECK(ids.defined() && ids.dim() == 1, "[language_model] step ids must be [B], got {}",
             ids.defined() ? shape_str(ids.shape()) : "undefined");
  Tensor h = embed->forward(ids);  // [B, D]
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string p = "layers." + std::to_string(i);
    State s = state.sub(p);
    h = blocks[i]->step(h, s);
    state.insert(p, s);
  }
  return logits(h);
}

std::vector<std::pair<std::string, Generator*>> LanguageModel::generators() {
  std::vector<std::pair<std::string, Generator*>> out;
  for (size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i]->drop)
      out.emplace_back("layers." + std::to_string(i) + ".drop", &blocks[i]->drop->generator);
  return out;
}

bool LanguageModel::constant_state() const {
  for (const auto& b : blocks)
    if (!b->mixer->constant_state()) return false;
  return true;
}

double LanguageModel::flops_per_token(int64_t context) const {
  // 2 FLOPs per weight in every matrix product (embedding lookups are free; a tied head is not).
  double f = 0;
  for (const auto& p : named_parameters())
    if (p.tensor.dim() == 2 && p.kind == nn::ParamKind::weight) f += 2.0 * p.tensor.numel();
  f += 2.0 * config.d_model * config.vocab * (config.tie_embeddings ? 1 : 0);
  for (const auto& b : blocks) f += b->mixer->mixing_flops_per_token(context);
  return f;
}

}  // namespace rill
