// The block stack model: config parsing with size checks, input adapters, the blocks, the head,
// and its registration as model type "stack".
#include "rill/models/stack_model.h"

#include <unistd.h>

#include "rill/io/json_fields.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"

namespace rill {

using nlohmann::json;

namespace {

// A list of one value, or one per layer, from a JSON value that is either.
template <class T, class Parse>
std::vector<T> one_or_per_layer(const json& v, const char* key, Parse parse) {
  std::vector<T> out;
  if (v.is_array()) {
    RILL_CHECK(!v.empty(), "[config] the model config: \"{}\" must not be an empty list", key);
    for (const json& e : v) out.push_back(parse(e));
  } else {
    out.push_back(parse(v));
  }
  return out;
}

double machine_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 0;
}

std::string gib(double bytes) { return fmt::format("{:.1f} GiB", bytes / double(1 << 30)); }

}  // namespace

StackConfig StackConfig::from_json(const json& j, const ModelIO& io_override) {
  StackConfig c;
  JsonFields f(j, "the model config");
  std::string type = "stack", dtype = "f32", mlp = "gelu", norm = "layer";
  f.get("type", type);
  RILL_CHECK(type == "stack", "[config] the model config: type \"{}\" is not \"stack\"", type);
  read_model_io(f, c.io, io_override);
  f.get("d_model", c.d_model);
  f.get("n_layers", c.n_layers);
  f.get("mlp_hidden", c.mlp_hidden);
  f.get("mlp", mlp);
  f.get("norm", norm);
  f.get("tie_embeddings", c.tie_embeddings);
  f.get("dropout", c.dropout);
  f.get("dtype", dtype);
  if (const json* b = f.raw("blocks"))
    c.blocks = one_or_per_layer<BlockKind>(*b, "blocks", [](const json& e) {
      RILL_CHECK(e.is_string(), "[config] the model config: a block must be a name, got {}",
                 e.dump());
      return parse_block_kind(e.get<std::string>());
    });
  if (const json* m = f.raw("mixers")) {
    RILL_CHECK(m->is_array() && !m->empty(),
               "[config] the model config: \"mixers\" must be a non-empty list");
    c.mixers.assign(m->begin(), m->end());
  }
  RILL_CHECK(!j.contains("seed"),
             "[config] the model config: \"seed\" belongs to the run (the training config's "
             "top-level \"seed\" initialises the model)");
  f.finish();
  f.check("vocab", c.io.vocab, c.io.vocab >= 0 && c.io.vocab <= (1 << 24),
          "between 0 (feature input) and 16777216");
  f.check("in_features", c.io.in_features, c.io.in_features >= 0 && c.io.in_features <= (1 << 20),
          "between 0 and 1048576");
  RILL_CHECK((c.io.vocab > 0) != (c.io.in_features > 0),
             "[config] the model config: give exactly one of \"vocab\" (token input) and "
             "\"in_features\" (real input); got vocab {} in_features {}",
             c.io.vocab, c.io.in_features);
  if (c.io.out_dim == 0) c.io.out_dim = c.io.vocab;
  f.check("out_dim", c.io.out_dim, c.io.out_dim > 0 && c.io.out_dim <= (1 << 24),
          "between 1 and 16777216");
  f.check("d_model", c.d_model, c.d_model > 0 && c.d_model <= 65536, "between 1 and 65536");
  f.check("n_layers", c.n_layers, c.n_layers > 0 && c.n_layers <= 4096, "between 1 and 4096");
  f.check("mlp_hidden", c.mlp_hidden, c.mlp_hidden > 0 && c.mlp_hidden <= (1 << 20),
          "between 1 and 1048576");
  f.check("dropout", c.dropout, c.dropout >= 0 && c.dropout < 1, "in [0, 1)");
  c.mlp = nn::parse_mlp_kind(mlp);
  c.norm = nn::parse_norm_kind(norm);
  RILL_CHECK(dtype == "f32" || dtype == "f64", "[config] dtype \"{}\" is not f32 or f64", dtype);
  c.dtype = dtype == "f64" ? DType::f64 : DType::f32;
  for (const auto& [what, n] :
       {std::pair<const char*, size_t>{"mixers", c.mixers.size()}, {"blocks", c.blocks.size()}})
    RILL_CHECK(n == 1 || static_cast<int64_t>(n) == c.n_layers,
               "[config] {} {} given for {} layers (give one, or one per layer)", n, what,
               c.n_layers);
  // Weights, their gradients and two optimiser moments: refuse what cannot fit before trying.
  const double d = double(c.d_model), h = double(c.mlp_hidden);
  const double per_layer = 4 * d * d + (c.mlp == nn::MLPKind::swiglu ? 3 : 2) * d * h + 12 * d * d;
  const double params = double(std::max(c.io.vocab, c.io.in_features)) * d +
                        double(c.n_layers) * per_layer + d * double(c.io.out_dim);
  const double need = 4 * params * double(dtype_size(c.dtype)), have = machine_memory_bytes();
  RILL_CHECK(have == 0 || need < have,
             "[config] the model config: d_model {}, n_layers {}, mlp_hidden {} would hold about "
             "{:.3g} parameters ({} with gradients and optimiser state), more than this machine's "
             "{} of memory",
             c.d_model, c.n_layers, c.mlp_hidden, params, gib(need), gib(have));
  return c;
}

json StackConfig::to_json() const {
  json blocks_json = json::array();
  for (BlockKind b : blocks) blocks_json.push_back(block_kind_name(b));
  return {{"type", "stack"},
          {"vocab", io.vocab},
          {"in_features", io.in_features},
          {"out_dim", io.out_dim},
          {"d_model", d_model},
          {"n_layers", n_layers},
          {"mlp_hidden", mlp_hidden},
          {"mlp", nn::mlp_kind_name(mlp)},
          {"norm", nn::norm_kind_name(norm)},
          {"tie_embeddings", tie_embeddings},
          {"dropout", dropout},
          {"dtype", dtype_name(dtype)},
          {"blocks", blocks_json},
          {"mixers", mixers}};
}

BlockConfig StackConfig::block(int64_t layer) const {
  BlockConfig b;
  b.kind = blocks.size() == 1 ? blocks[0] : blocks[static_cast<size_t>(layer)];
  b.d_model = d_model, b.mlp_hidden = mlp_hidden, b.mlp = mlp, b.norm = norm;
  b.dropout = dropout, b.dtype = dtype;
  return b;
}

const json& StackConfig::mixer(int64_t layer) const {
  return mixers.size() == 1 ? mixers[0] : mixers[static_cast<size_t>(layer)];
}

StackModel::StackModel(const StackConfig& c, uint64_t seed) : config(c) {
  if (c.io.vocab > 0) {
    embed = register_module(
        "embed", std::make_shared<nn::Embedding>(c.io.vocab, c.d_model, nn::derive_seed(seed, 0),
                                                 0.02, c.dtype));
  } else {
    nn::LinearOptions o;
    o.dtype = c.dtype;
    in_proj = register_module("in_proj", std::make_shared<nn::Linear>(c.io.in_features, c.d_model,
                                                                      nn::derive_seed(seed, 0), o));
  }
  for (int64_t i = 0; i < c.n_layers; ++i)
    blocks.push_back(register_module(
        "layers." + std::to_string(i),
        std::make_shared<Block>(c.block(i), c.mixer(i), nn::derive_seed(seed, 100 + i))));
  final_norm = register_module("final_norm", nn::make_norm(c.norm, c.d_model, c.dtype));
  const bool tied = c.tie_embeddings && embed && c.io.out_dim == c.io.vocab;
  if (!tied) {
    nn::LinearOptions o;
    o.bias = false;
    o.dtype = c.dtype;
    o.init = nn::LinearInit::normal;
    o.std = 0.02;
    out_proj = register_module(
        "head", std::make_shared<nn::Linear>(c.d_model, c.io.out_dim, nn::derive_seed(seed, 1), o));
  }
}

State StackModel::init_state(int64_t batch) const {
  State s;
  for (size_t i = 0; i < blocks.size(); ++i)
    s.insert("layers." + std::to_string(i), blocks[i]->mixer->init_state(batch));
  return s;
}

Tensor StackModel::embed_input(const Tensor& x) const {
  if (embed) {
    RILL_CHECK(x.defined() && (x.dtype() == DType::i64 || x.dtype() == DType::i32),
               "[stack] this model reads token ids (i64), got {}",
               x.defined() ? fmt::format("{} {}", dtype_name(x.dtype()), shape_str(x.shape()))
                           : "undefined");
    return embed->forward(x);
  }
  RILL_CHECK(x.defined() && is_floating(x.dtype()) && x.size(-1) == config.io.in_features,
             "[stack] this model reads real vectors of {} features, got {}", config.io.in_features,
             x.defined() ? fmt::format("{} {}", dtype_name(x.dtype()), shape_str(x.shape()))
                         : "undefined");
  return in_proj->forward(x.dtype() == config.dtype ? x : x.to(config.dtype));
}

Tensor StackModel::head(const Tensor& h) const {
  return out_proj ? out_proj->forward(h) : matmul(h, embed->weight.transpose(0, 1));
}

Tensor StackModel::hidden(const Tensor& x, State* state, const Tensor& resets) {
  const int64_t want = embed ? 2 : 3;
  RILL_CHECK(x.defined() && x.dim() == want, "[stack] forward expects {}, got {}",
             embed ? "ids [B, T]" : "x [B, T, F]",
             x.defined() ? shape_str(x.shape()) : "undefined");
  Tensor h = embed_input(x);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (state) {
      const std::string p = "layers." + std::to_string(i);
      State s = state->sub(p);
      h = blocks[i]->forward(h, &s, resets);
      state->insert(p, s);
    } else {
      h = blocks[i]->forward(h, nullptr, resets);
    }
  }
  return final_norm->forward(h);
}

Tensor StackModel::forward(const Tensor& x, State* state) { return head(hidden(x, state)); }

Tensor StackModel::forward_with_resets(const Tensor& x, State* state, const Tensor& resets) {
  return head(hidden(x, state, resets));
}

Tensor StackModel::step_impl(const Tensor& x_t, State& state) {
  const int64_t want = embed ? 1 : 2;
  RILL_CHECK(x_t.defined() && x_t.dim() == want, "[stack] step expects {}, got {}",
             embed ? "ids [B]" : "x_t [B, F]",
             x_t.defined() ? shape_str(x_t.shape()) : "undefined");
  Tensor h = embed_input(x_t);  // [B, D]
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string p = "layers." + std::to_string(i);
    State s = state.sub(p);
    h = blocks[i]->step(h, s);
    state.insert(p, s);
  }
  return head(final_norm->forward(h));
}

std::vector<std::pair<std::string, Generator*>> StackModel::generators() {
  std::vector<std::pair<std::string, Generator*>> out;
  for (size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i]->drop)
      out.emplace_back("layers." + std::to_string(i) + ".drop", &blocks[i]->drop->generator);
  return out;
}

ModelInfo StackModel::info(int64_t context) const {
  ModelInfo m;
  m.parameters = num_parameters();
  // 2 FLOPs per weight in every matrix product (an embedding lookup is free; a tied head is not).
  for (const auto& p : named_parameters())
    if (p.tensor.dim() == 2 && p.kind == nn::ParamKind::weight)
      m.flops_per_token += 2.0 * p.tensor.numel();
  if (!out_proj) m.flops_per_token += 2.0 * config.d_model * config.io.out_dim;
  for (const auto& b : blocks) {
    m.flops_per_token += b->mixer->mixing_flops_per_token(context);
    m.constant_state = m.constant_state && b->mixer->constant_state();
  }
  for (const auto& b : blocks) m.state_bytes += b->mixer->state_bytes(context);
  return m;
}

namespace {

const ModelRegistration kRegistered("stack", [](const json& config, const ModelIO& io,
                                                uint64_t seed) {
  return std::make_shared<StackModel>(StackConfig::from_json(config, io), seed);
});

}  // namespace

}  // namespace rill
