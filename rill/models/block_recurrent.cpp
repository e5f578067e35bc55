// The block-recurrent model: config parsing, the state and its clock, resets, the step form,
// FLOPs and state bytes, and its registration as model type "block_recurrent".
#include "rill/models/block_recurrent.h"

#include <algorithm>
#include <set>

#include "rill/backend/attention_params.h"
#include "rill/io/json_fields.h"
#include "rill/mixers/multi_head.h"
#include "rill/mixers/resets.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/matmul.h"

namespace rill {

using nlohmann::json;

BlockRecurrentConfig BlockRecurrentConfig::from_json(const json& j, const ModelIO& io_override) {
  BlockRecurrentConfig c;
  JsonFields f(j, "the block_recurrent model config");
  std::string type, dtype = "f32", gate = "fixed", cell = "skip";
  f.get("type", type);
  read_model_io(f, c.io, io_override);
  f.get("d_model", c.d_model);
  f.check("d_model", c.d_model, c.d_model > 0 && c.d_model <= 65536, "between 1 and 65536");
  f.get("n_layers", c.n_layers);
  f.check("n_layers", c.n_layers, c.n_layers > 0 && c.n_layers <= 1024, "between 1 and 1024");
  read_heads(f, c.d_model, c.heads, c.head_dim);
  f.get("mlp_hidden", c.mlp_hidden);
  f.check("mlp_hidden", c.mlp_hidden, c.mlp_hidden > 0 && c.mlp_hidden <= (1 << 20),
          "between 1 and 1048576");
  f.get("window", c.window);
  f.check("window", c.window, c.window > 0 && c.window <= 65536, "between 1 and 65536");
  f.get("states", c.states);
  f.check("states", c.states, c.states > 0 && c.states <= 65536, "between 1 and 65536");
  f.get("recurrent_layers", c.recurrent_layers);
  f.get("gate", gate);
  f.get("cell", cell);
  f.get("num_buckets", c.num_buckets);
  f.get("max_distance", c.max_distance);
  f.get("scale_init", c.scale_init);
  f.check("scale_init", c.scale_init, c.scale_init >= 0, "0 (sqrt(head_dim)) or positive");
  f.get("tie_embeddings", c.tie_embeddings);
  f.get("dtype", dtype);
  RILL_CHECK(!j.contains("seed"),
             "[config] the model config: \"seed\" belongs to the run (the training config's "
             "top-level \"seed\" initialises the model)");
  f.finish();
  RILL_CHECK(type == "block_recurrent",
             "[config] the model config: type \"{}\" is not \"block_recurrent\"", type);
  RILL_CHECK(c.io.vocab > 0 && c.io.in_features == 0,
             "[config] the block_recurrent model reads token ids: give \"vocab\" (a token task), "
             "not \"in_features\" (got vocab {}, in_features {})",
             c.io.vocab, c.io.in_features);
  f.check("vocab", c.io.vocab, c.io.vocab <= (1 << 24), "at most 16777216");
  if (c.io.out_dim == 0) c.io.out_dim = c.io.vocab;
  f.check("out_dim", c.io.out_dim, c.io.out_dim > 0 && c.io.out_dim <= (1 << 24),
          "between 1 and 16777216");
  if (c.head_dim == 0) {
    RILL_CHECK(c.d_model % c.heads == 0,
               "[config] the block_recurrent model: d_model {} is not a multiple of heads {} "
               "(or give head_dim)",
               c.d_model, c.heads);
    c.head_dim = c.d_model / c.heads;
  }
  check_t5("config", false, c.num_buckets, c.max_distance);
  std::set<int64_t> seen;
  for (int64_t& l : c.recurrent_layers) {
    RILL_CHECK(l >= -c.n_layers && l < c.n_layers,
               "[config] the block_recurrent model: recurrent layer {} is not a layer of {} "
               "(0 to {}, or -1 to -{} from the end)",
               l, c.n_layers, c.n_layers - 1, c.n_layers);
    if (l < 0) l += c.n_layers;
    RILL_CHECK(seen.insert(l).second,
               "[config] the block_recurrent model: layer {} is listed twice in recurrent_layers",
               l);
  }
  c.gate = parse_gate_kind(gate);
  c.cell = parse_cell_kind(cell);
  RILL_CHECK(dtype == "f32" || dtype == "f64", "[config] dtype \"{}\" is not f32 or f64", dtype);
  c.dtype = dtype == "f64" ? DType::f64 : DType::f32;
  return c;
}

json BlockRecurrentConfig::to_json() const {
  return {{"type", "block_recurrent"},
          {"vocab", io.vocab},
          {"out_dim", io.out_dim},
          {"d_model", d_model},
          {"n_layers", n_layers},
          {"heads", heads},
          {"head_dim", head_dim},
          {"mlp_hidden", mlp_hidden},
          {"window", window},
          {"states", states},
          {"recurrent_layers", recurrent_layers},
          {"gate", gate_kind_name(gate)},
          {"cell", cell_kind_name(cell)},
          {"num_buckets", num_buckets},
          {"max_distance", max_distance},
          {"scale_init", scale_init},
          {"tie_embeddings", tie_embeddings},
          {"dtype", dtype_name(dtype)}};
}

bool BlockRecurrentConfig::recurrent(int64_t layer) const {
  return std::find(recurrent_layers.begin(), recurrent_layers.end(), layer) !=
         recurrent_layers.end();
}

BlockRecurrentLayerConfig BlockRecurrentConfig::layer(int64_t i) const {
  BlockRecurrentLayerConfig l;
  l.d_model = d_model, l.heads = heads, l.head_dim = head_dim, l.mlp_hidden = mlp_hidden;
  l.window = window, l.recurrent = recurrent(i), l.states = states;
  l.gate = gate, l.cell = cell;
  l.num_buckets = num_buckets, l.max_distance = max_distance, l.scale_init = scale_init;
  l.dtype = dtype;
  return l;
}

BlockRecurrentModel::BlockRecurrentModel(const BlockRecurrentConfig& c, uint64_t seed)
    : TokenStepModel("block_recurrent"), config(c) {
  embed =
      register_module("embed", std::make_shared<nn::Embedding>(
                                   c.io.vocab, c.d_model, nn::derive_seed(seed, 0), 0.02, c.dtype));
  for (int64_t i = 0; i < c.n_layers; ++i)
    layers.push_back(register_module(
        "layers." + std::to_string(i),
        std::make_shared<BlockRecurrentLayer>(c.layer(i), nn::derive_seed(seed, 100 + i))));
  final_norm =
      register_module("final_norm", std::make_shared<nn::RMSNorm>(c.d_model, 1e-6, c.dtype));
  if (!c.tie_embeddings || c.io.out_dim != c.io.vocab) {
    nn::LinearOptions o;
    o.bias = false;
    o.dtype = c.dtype;
    o.init = nn::LinearInit::normal;
    o.std = 0.02;
    out_proj = register_module(
        "head", std::make_shared<nn::Linear>(c.d_model, c.io.out_dim, nn::derive_seed(seed, 1), o));
  }
}

Shape BlockRecurrentModel::cache_shape(int64_t batch) const {
  return {batch, config.heads, 2 * config.window, config.head_dim};
}

State BlockRecurrentModel::init_state(int64_t batch) const {
  State s;
  s.set("pos", Tensor::zeros({batch}, DType::i64));
  s.set("start", Tensor::zeros({batch}, DType::i64));
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = "layers." + std::to_string(i);
    s.set(p + ".keys", Tensor::zeros(cache_shape(batch), config.dtype));
    s.set(p + ".values", Tensor::zeros(cache_shape(batch), config.dtype));
    if (layers[i]->config.recurrent) s.set(p + ".cell", layers[i]->initial_cell(batch));
  }
  return s;
}

void BlockRecurrentModel::check_state(const State& s, int64_t batch) const {
  auto expect = [&](const std::string& name, const Shape& shape, DType dtype) {
    const Tensor t = s.get(name);
    RILL_CHECK(t.shape() == shape && t.dtype() == dtype,
               "[block_recurrent] state tensor \"{}\" must be {} {}, got {} {}", name,
               dtype_name(dtype), shape_str(shape), dtype_name(t.dtype()), shape_str(t.shape()));
  };
  expect("pos", {batch}, DType::i64);
  expect("start", {batch}, DType::i64);
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = "layers." + std::to_string(i);
    expect(p + ".keys", cache_shape(batch), config.dtype);
    expect(p + ".values", cache_shape(batch), config.dtype);
    if (layers[i]->config.recurrent)
      expect(p + ".cell", {batch, config.states, config.d_model}, config.dtype);
  }
  const std::vector<int64_t> pos = s.get("pos").to_vector<int64_t>();
  const std::vector<int64_t> start = s.get("start").to_vector<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    RILL_CHECK(pos[size_t(b)] == pos[0],
               "[block_recurrent] the streams of a state share one block clock: pos is {} in "
               "stream 0 and {} in stream {}",
               pos[0], pos[size_t(b)], b);
    RILL_CHECK(start[size_t(b)] >= 0 && start[size_t(b)] <= pos[0],
               "[block_recurrent] state \"start\" {} of stream {} is outside [0, pos {}]",
               start[size_t(b)], b, pos[0]);
  }
}

Tensor BlockRecurrentModel::head(const Tensor& h) const {
  const Tensor n = final_norm->forward(h);
  return out_proj ? out_proj->forward(n) : matmul(n, embed->weight.transpose(0, 1));
}

Tensor BlockRecurrentModel::run(const Tensor& x, State& s) const {
  const int64_t batch = x.size(0);
  WindowClock clock;
  clock.pos = s.get("pos").to_vector<int64_t>()[0];
  clock.start = s.get("start").to_vector<int64_t>();
  Tensor h = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = "layers." + std::to_string(i);
    Tensor keys = s.get(p + ".keys"), values = s.get(p + ".values");
    Tensor cell = layers[i]->config.recurrent ? s.get(p + ".cell") : Tensor();
    h = layers[i]->forward(h, clock, keys, values, cell);
    s.set(p + ".keys", keys);
    s.set(p + ".values", values);
    if (cell.defined()) s.set(p + ".cell", cell);
  }
  s.set("pos", Tensor::full({batch}, double(clock.pos + x.size(1)), DType::i64));
  return h;
}

Tensor BlockRecurrentModel::forward(const Tensor& ids, State* state) {
  return forward_with_resets(ids, state, Tensor());
}

Tensor BlockRecurrentModel::forward_with_resets(const Tensor& ids, State* state,
                                                const Tensor& resets) {
  check_ids(ids, 2, "forward");
  const int64_t batch = ids.size(0), len = ids.size(1);
  State local;
  State& s = state ? *state : local;
  if (!state) s = init_state(batch);
  check_state(s, batch);
  const Tensor h = embed->forward(ids);  // [B, T, D]
  if (!resets.defined()) return head(run(h, s));
  // Pieces between the positions where some stream resets; at each, the streams that reset get
  // the initial state and a start that hides everything before.
  const std::vector<float> mask =
      reset_mask(resets, batch, len, DType::f32, "block_recurrent").to_vector<float>();
  std::vector<Tensor> out;
  for (int64_t t0 = 0; t0 < len;) {
    int64_t t1 = t0 + 1;
    for (; t1 < len; ++t1) {
      bool any = false;
      for (int64_t b = 0; b < batch; ++b) any = any || mask[size_t(b * len + t1)] != 0;
      if (any) break;
    }
    std::vector<float> lanes(size_t(batch), 0.f);
    for (int64_t b = 0; b < batch; ++b) lanes[size_t(b)] = mask[size_t(b * len + t0)];
    if (std::any_of(lanes.begin(), lanes.end(), [](float v) { return v != 0; })) {
      const int64_t pos = s.get("pos").to_vector<int64_t>()[0];
      std::vector<int64_t> start = s.get("start").to_vector<int64_t>();
      for (int64_t b = 0; b < batch; ++b)
        if (lanes[size_t(b)] != 0) start[size_t(b)] = pos;
      s.set("start", Tensor::from_vector(start, {batch}));
      const Tensor lane = Tensor::from_vector(lanes, {batch, 1, 1});
      for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i]->config.recurrent) {
          const std::string p = "layers." + std::to_string(i) + ".cell";
          s.set(p, where(lane, layers[i]->initial_cell(batch), s.get(p)));
        }
    }
    out.push_back(run(h.narrow(1, t0, t1 - t0), s));
    t0 = t1;
  }
  return head(out.size() == 1 ? out[0] : concat(out, 1));
}

ModelInfo BlockRecurrentModel::info(int64_t context) const {
  ModelInfo m;
  m.parameters = num_parameters();
  m.flops_per_token = 2.0 * double(config.d_model) * double(config.io.out_dim);
  for (const auto& l : layers) m.flops_per_token += l->flops_per_token(context);
  m.state_bytes = init_state(1).bytes();
  m.constant_state = true;
  return m;
}

namespace {

const ModelRegistration kRegistered("block_recurrent", [](const json& config, const ModelIO& io,
                                                          uint64_t seed) {
  return std::make_shared<BlockRecurrentModel>(BlockRecurrentConfig::from_json(config, io), seed);
});

}  // namespace

}  // namespace rill
