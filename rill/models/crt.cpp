// The CRT model: config parsing, the segment clock, the memory slot and the memory update, resets,
// the step form, FLOPs and state bytes, and its registration as model type "crt".
#include "rill/models/crt.h"

#include <algorithm>

#include "rill/io/json_fields.h"
#include "rill/mixers/multi_head.h"
#include "rill/mixers/resets.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/matmul.h"

namespace rill {

using nlohmann::json;

namespace {

CrtMemory parse_memory(const std::string& s) {
  if (s == "gru") return CrtMemory::gru;
  if (s == "nc_gru") return CrtMemory::nc_gru;
  if (s == "none") return CrtMemory::none;
  fail("[config] the crt model: unknown memory \"{}\" (known: gru, nc_gru, none)", s);
}
const char* memory_name(CrtMemory m) {
  return m == CrtMemory::gru ? "gru" : m == CrtMemory::nc_gru ? "nc_gru" : "none";
}
CrtSummary parse_summary(const std::string& s) {
  if (s == "last") return CrtSummary::last;
  if (s == "write") return CrtSummary::write;
  if (s == "rnn") return CrtSummary::rnn;
  fail("[config] the crt model: unknown summary \"{}\" (known: last, write, rnn)", s);
}
const char* summary_name(CrtSummary s) {
  return s == CrtSummary::last ? "last" : s == CrtSummary::write ? "write" : "rnn";
}
CrtPositions parse_positions(const std::string& s) {
  if (s == "rotary") return CrtPositions::rotary;
  if (s == "learned") return CrtPositions::learned;
  if (s == "none") return CrtPositions::none;
  fail("[config] the crt model: unknown positions \"{}\" (known: rotary, learned, none)", s);
}
const char* positions_name(CrtPositions p) {
  return p == CrtPositions::rotary ? "rotary" : p == CrtPositions::learned ? "learned" : "none";
}

}  // namespace

CrtConfig CrtConfig::from_json(const json& j, const ModelIO& io_override) {
  CrtConfig c;
  JsonFields f(j, "the crt model config");
  std::string type, dtype = "f32", mlp = "gelu", norm = "layer", memory = "gru", summary = "last",
                    positions = "rotary";
  f.get("type", type);
  read_model_io(f, c.io, io_override);
  f.get("segment", c.segment);
  f.check("segment", c.segment, c.segment > 0 && c.segment <= 65536, "between 1 and 65536");
  f.get("d_model", c.d_model);
  f.check("d_model", c.d_model, c.d_model > 0 && c.d_model <= 65536, "between 1 and 65536");
  f.get("n_layers", c.n_layers);
  f.check("n_layers", c.n_layers, c.n_layers > 0 && c.n_layers <= 1024, "between 1 and 1024");
  read_heads(f, c.d_model, c.heads, c.head_dim);
  f.get("mlp_hidden", c.mlp_hidden);
  f.check("mlp_hidden", c.mlp_hidden, c.mlp_hidden > 0 && c.mlp_hidden <= (1 << 20),
          "between 1 and 1048576");
  f.get("mlp", mlp);
  f.get("norm", norm);
  f.get("memory", memory);
  f.get("summary", summary);
  f.get("positions", positions);
  f.get("bptt_segments", c.bptt_segments);
  f.check("bptt_segments", c.bptt_segments, c.bptt_segments >= 0,
          "0 (through every segment of a sequence) or a positive number of segments");
  f.get("clear_memory", c.clear_memory);
  f.get("negative_ones", c.negative_ones);
  f.get("tie_embeddings", c.tie_embeddings);
  f.get("dtype", dtype);
  RILL_CHECK(!j.contains("seed"),
             "[config] the model config: \"seed\" belongs to the run (the training config's "
             "top-level \"seed\" initialises the model)");
  f.finish();
  RILL_CHECK(type == "crt", "[config] the model config: type \"{}\" is not \"crt\"", type);
  RILL_CHECK(c.io.vocab > 0 && c.io.in_features == 0,
             "[config] the crt model reads token ids: give \"vocab\" (a token task), not "
             "\"in_features\" (got vocab {}, in_features {})",
             c.io.vocab, c.io.in_features);
  f.check("vocab", c.io.vocab, c.io.vocab <= (1 << 24), "at most 16777216");
  if (c.io.out_dim == 0) c.io.out_dim = c.io.vocab;
  f.check("out_dim", c.io.out_dim, c.io.out_dim > 0 && c.io.out_dim <= (1 << 24),
          "between 1 and 16777216");
  if (c.head_dim == 0) {
    RILL_CHECK(c.d_model % c.heads == 0,
               "[config] the crt model: d_model {} is not a multiple of heads {} (or give "
               "head_dim)",
               c.d_model, c.heads);
    c.head_dim = c.d_model / c.heads;
  }
  c.mlp = nn::parse_mlp_kind(mlp);
  c.norm = nn::parse_norm_kind(norm);
  c.memory = parse_memory(memory);
  c.summary = parse_summary(summary);
  c.positions = parse_positions(positions);
  RILL_CHECK(c.positions != CrtPositions::rotary || c.head_dim % 2 == 0,
             "[config] the crt model: rotary positions need an even head_dim, got {}", c.head_dim);
  RILL_CHECK(c.memory != CrtMemory::none || (!c.clear_memory && c.summary == CrtSummary::last),
             "[config] the crt model: memory \"none\" has no memory to clear or summarise "
             "(drop \"clear_memory\" and \"summary\")");
  RILL_CHECK(c.negative_ones == 0 || c.memory == CrtMemory::nc_gru,
             "[config] the crt model: \"negative_ones\" is an nc_gru setting (memory is \"{}\")",
             memory);
  f.check("negative_ones", c.negative_ones, c.negative_ones >= 0 && c.negative_ones <= c.d_model,
          "between 0 and d_model");
  RILL_CHECK(dtype == "f32" || dtype == "f64", "[config] dtype \"{}\" is not f32 or f64", dtype);
  c.dtype = dtype == "f64" ? DType::f64 : DType::f32;
  return c;
}

json CrtConfig::to_json() const {
  return {{"type", "crt"},
          {"vocab", io.vocab},
          {"out_dim", io.out_dim},
          {"segment", segment},
          {"d_model", d_model},
          {"n_layers", n_layers},
          {"heads", heads},
          {"head_dim", head_dim},
          {"mlp_hidden", mlp_hidden},
          {"mlp", nn::mlp_kind_name(mlp)},
          {"norm", nn::norm_kind_name(norm)},
          {"memory", memory_name(memory)},
          {"summary", summary_name(summary)},
          {"positions", positions_name(positions)},
          {"bptt_segments", bptt_segments},
          {"clear_memory", clear_memory},
          {"negative_ones", negative_ones},
          {"tie_embeddings", tie_embeddings},
          {"dtype", dtype_name(dtype)}};
}

CrtModel::CrtModel(const CrtConfig& c, uint64_t seed) : TokenStepModel("crt"), config(c) {
  embed =
      register_module("embed", std::make_shared<nn::Embedding>(
                                   c.io.vocab, c.d_model, nn::derive_seed(seed, 0), 0.02, c.dtype));
  if (c.positions == CrtPositions::learned)
    positions = register_module(
        "positions", std::make_shared<nn::Embedding>(c.pinned() + c.segment + 1, c.d_model,
                                                     nn::derive_seed(seed, 1), 0.02, c.dtype));
  CrtLayerConfig lc;
  lc.d_model = c.d_model, lc.heads = c.heads, lc.head_dim = c.head_dim;
  lc.mlp_hidden = c.mlp_hidden, lc.mlp = c.mlp, lc.norm = c.norm;
  lc.rotary = c.positions == CrtPositions::rotary, lc.dtype = c.dtype;
  for (int64_t i = 0; i < c.n_layers; ++i)
    layers.push_back(
        register_module("layers." + std::to_string(i),
                        std::make_shared<CrtLayer>(lc, nn::derive_seed(seed, 100 + i))));
  final_norm = register_module("final_norm", nn::make_norm(c.norm, c.d_model, c.dtype));
  if (!c.tie_embeddings || c.io.out_dim != c.io.vocab) {
    nn::LinearOptions o;
    o.bias = false;
    o.dtype = c.dtype;
    o.init = nn::LinearInit::normal;
    o.std = 0.02;
    out_proj = register_module(
        "head", std::make_shared<nn::Linear>(c.d_model, c.io.out_dim, nn::derive_seed(seed, 2), o));
  }
  if (c.memory == CrtMemory::none) return;
  if (c.memory == CrtMemory::gru)
    gru = register_module(
        "memory_cell",
        std::make_shared<nn::GRUCell>(c.d_model, c.d_model, nn::derive_seed(seed, 3), c.dtype));
  else
    nc_gru = register_module("memory_cell", std::make_shared<nn::NCGRUCell>(
                                                c.d_model, c.d_model, nn::derive_seed(seed, 3),
                                                c.dtype, c.negative_ones));
  // m_0 and the write embedding start at the scale of the token embeddings (no weight decay:
  // they are embeddings).
  auto vector = [&](const char* name, uint64_t k) {
    Tensor t = Tensor::empty({c.d_model}, c.dtype);
    nn::normal_(t, 0, 0.02, nn::derive_seed(seed, k));
    return register_parameter(name, t, nn::ParamKind::embedding);
  };
  initial_memory = vector("initial_memory", 4);
  if (c.summary == CrtSummary::write) write_embedding = vector("write_embedding", 5);
}

Shape CrtModel::cache_shape(int64_t batch) const {
  return {batch, config.heads, config.pinned() + config.segment, config.head_dim};
}

Tensor CrtModel::initial_memory_for(int64_t batch) const {
  return initial_memory.reshape({1, config.d_model}).expand({batch, config.d_model});
}

std::vector<Tensor> CrtModel::memory_cell_parameters() const {
  if (gru) return gru->parameters();
  if (nc_gru) return nc_gru->parameters();
  return {};
}

State CrtModel::init_state(int64_t batch) const {
  State s;
  s.set("pos", Tensor::zeros({batch}, DType::i64));
  s.set("start", Tensor::zeros({batch}, DType::i64));
  if (config.memory != CrtMemory::none) {
    // On the tape: a loss reaches m_0 through a fresh state (the trainer detaches carried ones).
    s.set("memory", initial_memory_for(batch).contiguous());
    if (config.summary == CrtSummary::rnn) s.set("running", initial_memory_for(batch).contiguous());
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = "layers." + std::to_string(i);
    s.set(p + ".keys", Tensor::zeros(cache_shape(batch), config.dtype));
    s.set(p + ".values", Tensor::zeros(cache_shape(batch), config.dtype));
  }
  return s;
}

void CrtModel::check_state(const State& s, int64_t batch) const {
  auto expect = [&](const std::string& name, const Shape& shape, DType dtype) {
    const Tensor t = s.get(name);
    RILL_CHECK(t.shape() == shape && t.dtype() == dtype,
               "[crt] state tensor \"{}\" must be {} {}, got {} {}", name, dtype_name(dtype),
               shape_str(shape), dtype_name(t.dtype()), shape_str(t.shape()));
  };
  expect("pos", {batch}, DType::i64);
  expect("start", {batch}, DType::i64);
  if (config.memory != CrtMemory::none) {
    expect("memory", {batch, config.d_model}, config.dtype);
    if (config.summary == CrtSummary::rnn) expect("running", {batch, config.d_model}, config.dtype);
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string p = "layers." + std::to_string(i);
    expect(p + ".keys", cache_shape(batch), config.dtype);
    expect(p + ".values", cache_shape(batch), config.dtype);
  }
  const std::vector<int64_t> pos = s.get("pos").to_vector<int64_t>();
  const std::vector<int64_t> start = s.get("start").to_vector<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    RILL_CHECK(pos[size_t(b)] == pos[0],
               "[crt] the streams of a state share one segment clock: pos is {} in stream 0 and "
               "{} in stream {}",
               pos[0], pos[size_t(b)], b);
    RILL_CHECK(start[size_t(b)] >= 0 && start[size_t(b)] <= pos[0],
               "[crt] state \"start\" {} of stream {} is outside [0, pos {}]", start[size_t(b)], b,
               pos[0]);
  }
}

// The state of one call, unpacked: the current segment's rows stay tensors on the tape until the
// call ends, so gradients reach every earlier row and memory of the call.
struct CrtModel::Run {
  int64_t batch = 0, pos = 0;
  int64_t segment_start = 0;  // the clock at the current segment's first token
  std::vector<int64_t> start;
  Tensor memory, running;            // [B, D]
  std::vector<Tensor> keys, values;  // per layer [B, H, pinned + p, Dh]; undefined before a
                                     // segment's first token
  Tensor w_c;  // nc_gru: the recurrent matrix, formed at the call's first memory update (an
               // O(D^3) solve: once per call, not once per token of the step form)
};

Tensor CrtModel::with_positions(const Tensor& x, int64_t first) const {
  if (!positions) return x;
  return x + positions->weight.narrow(0, first, x.size(1));
}

Tensor CrtModel::cell(const Tensor& input, const Tensor& memory, Run& r) const {
  if (gru) return gru->forward(input, memory);
  if (!r.w_c.defined()) r.w_c = nc_gru->recurrent_matrix();
  return nc_gru->forward(input, memory, r.w_c);
}

// The memory slot's rows: m [B, D] through every layer, attending only to itself. Fills keys
// and values with one row per layer.
Tensor CrtModel::memory_rows(const Tensor& memory, std::vector<Tensor>& keys,
                             std::vector<Tensor>& values) const {
  Tensor x = with_positions(memory.reshape({memory.size(0), 1, config.d_model}), 0);
  for (size_t i = 0; i < layers.size(); ++i)
    x = layers[i]->forward(x, 0, keys[i], values[i], 1, {});
  return x;
}

void CrtModel::begin_segment(Run& r) const {
  const int64_t segment_index = r.pos / config.segment;
  for (size_t i = 0; i < layers.size(); ++i) r.keys[i] = Tensor(), r.values[i] = Tensor();
  if (config.memory == CrtMemory::none) return;
  if (config.clear_memory) r.memory = initial_memory_for(r.batch);
  if (config.bptt_segments > 0 && segment_index % config.bptt_segments == 0)
    r.memory = r.memory.detach();
  memory_rows(r.memory, r.keys, r.values);
  if (config.summary == CrtSummary::rnn) r.running = r.memory;
}

// The segment is complete: m_n from its summary. `normed` [B, D] is the last token's normed
// output.
void CrtModel::end_segment(Run& r, const Tensor& normed) const {
  if (config.memory == CrtMemory::none || config.clear_memory) return;
  const int64_t pinned = config.pinned(), L = config.segment;
  if (config.summary == CrtSummary::rnn) {
    r.memory = r.running;
    return;
  }
  Tensor summary = normed;
  if (config.summary == CrtSummary::write) {
    // The write slot: one more row after the last token, attending to the whole segment.
    const std::vector<int64_t> hidden = hidden_rows(r);
    Tensor x = with_positions((r.memory + write_embedding).reshape({r.batch, 1, config.d_model}),
                              pinned + L);
    for (size_t i = 0; i < layers.size(); ++i) {
      Tensor k = r.keys[i], v = r.values[i];  // the slot's own row is not kept
      x = layers[i]->forward(x, pinned + L, k, v, pinned, hidden);
    }
    summary = final_norm->forward(x).reshape({r.batch, config.d_model});
  }
  r.memory = cell(summary, r.memory, r);
}

std::vector<int64_t> CrtModel::hidden_rows(const Run& r) const {
  std::vector<int64_t> hidden(size_t(r.batch), 0);
  bool any = false;
  for (int64_t b = 0; b < r.batch; ++b)
    if (r.start[size_t(b)] > r.segment_start) {
      hidden[size_t(b)] = config.pinned() + r.start[size_t(b)] - r.segment_start;
      any = true;
    }
  return any ? hidden : std::vector<int64_t>{};
}

// Streams with lanes[b] != 0 start afresh at the clock's position: they hide what came before
// and read the initial memory (inside a segment, the memory slot's rows are rebuilt from it).
void CrtModel::reset_lanes(Run& r, const std::vector<float>& lanes) const {
  for (int64_t b = 0; b < r.batch; ++b)
    if (lanes[size_t(b)] != 0) r.start[size_t(b)] = r.pos;
  if (config.memory == CrtMemory::none) return;
  const Tensor lane = Tensor::from_vector(lanes, {r.batch, 1}).to(config.dtype);
  const Tensor m0 = initial_memory_for(r.batch);
  r.memory = where(lane, m0, r.memory);
  if (r.running.defined()) r.running = where(lane, m0, r.running);
  if (r.pos % config.segment == 0) return;  // begin_segment builds the rows from r.memory
  std::vector<Tensor> k(layers.size()), v(layers.size());
  memory_rows(r.memory, k, v);
  const Tensor lane4 = lane.reshape({r.batch, 1, 1, 1});
  auto replace_row0 = [&](const Tensor& rows, const Tensor& row0) {
    const Tensor kept = rows.narrow(2, 1, rows.size(2) - 1);
    return concat({where(lane4, row0, rows.narrow(2, 0, 1)), kept}, 2);
  };
  for (size_t i = 0; i < layers.size(); ++i) {
    r.keys[i] = replace_row0(r.keys[i], k[i]);
    r.values[i] = replace_row0(r.values[i], v[i]);
  }
}

CrtModel::Run CrtModel::load(const State& s, int64_t batch) const {
  Run r;
  r.batch = batch;
  r.pos = s.get("pos").to_vector<int64_t>()[0];
  r.start = s.get("start").to_vector<int64_t>();
  const int64_t p = r.pos % config.segment;
  r.segment_start = r.pos - p;
  if (config.memory != CrtMemory::none) r.memory = s.get("memory");
  if (s.has("running")) r.running = s.get("running");
  r.keys.resize(layers.size());
  r.values.resize(layers.size());
  if (p > 0)
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string l = "layers." + std::to_string(i);
      r.keys[i] = s.get(l + ".keys").narrow(2, 0, config.pinned() + p);
      r.values[i] = s.get(l + ".values").narrow(2, 0, config.pinned() + p);
    }
  return r;
}

void CrtModel::save(const Run& r, State& s) const {
  s.set("pos", Tensor::full({r.batch}, double(r.pos), DType::i64));
  s.set("start", Tensor::from_vector(r.start, {r.batch}));
  if (r.memory.defined()) s.set("memory", r.memory);
  if (r.running.defined()) s.set("running", r.running);
  const int64_t rows = config.pinned() + config.segment;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string l = "layers." + std::to_string(i);
    // A complete segment leaves nothing: the next one starts from its memory slot.
    const bool open = r.pos % config.segment != 0 && r.keys[i].defined();
    s.set(l + ".keys",
          open ? pad_rows(r.keys[i], rows) : Tensor::zeros(cache_shape(r.batch), config.dtype));
    s.set(l + ".values",
          open ? pad_rows(r.values[i], rows) : Tensor::zeros(cache_shape(r.batch), config.dtype));
  }
}

Tensor CrtModel::run(const Tensor& h, Run& r) const {
  const int64_t n = h.size(1), pinned = config.pinned(), L = config.segment;
  const int64_t p = r.pos % L;
  if (p == 0) {
    r.segment_start = r.pos;
    begin_segment(r);
  }
  const std::vector<int64_t> hidden = hidden_rows(r);
  Tensor x = with_positions(h, pinned + p);
  for (size_t i = 0; i < layers.size(); ++i)
    x = layers[i]->forward(x, pinned + p, r.keys[i], r.values[i], pinned, hidden);
  const Tensor normed = final_norm->forward(x);  // [B, n, D]
  if (config.summary == CrtSummary::rnn && config.memory != CrtMemory::none && !config.clear_memory)
    for (int64_t t = 0; t < n; ++t)
      r.running = cell(normed.narrow(1, t, 1).reshape({r.batch, config.d_model}), r.running, r);
  r.pos += n;
  if (p + n == L) end_segment(r, normed.narrow(1, n - 1, 1).reshape({r.batch, config.d_model}));
  return normed;
}

Tensor CrtModel::head(const Tensor& normed) const {
  return out_proj ? out_proj->forward(normed) : matmul(normed, embed->weight.transpose(0, 1));
}

Tensor CrtModel::forward(const Tensor& ids, State* state) {
  return forward_with_resets(ids, state, Tensor());
}

Tensor CrtModel::forward_with_resets(const Tensor& ids, State* state, const Tensor& resets) {
  check_ids(ids, 2, "forward");
  const int64_t batch = ids.size(0), len = ids.size(1);
  State local;
  State& s = state ? *state : local;
  if (!state) s = init_state(batch);
  check_state(s, batch);
  std::vector<float> mask;
  if (resets.defined()) mask = reset_mask(resets, batch, len, DType::f32, "crt").to_vector<float>();
  auto resets_at = [&](int64_t t) {
    std::vector<float> lanes(size_t(batch), 0.f);
    bool any = false;
    for (int64_t b = 0; b < batch && !mask.empty(); ++b) {
      lanes[size_t(b)] = mask[size_t(b * len + t)];
      any = any || lanes[size_t(b)] != 0;
    }
    return any ? lanes : std::vector<float>{};
  };
  const Tensor h = embed->forward(ids);  // [B, T, D]
  Run r = load(s, batch);
  // Pieces: a segment's tokens, cut where some stream resets.
  std::vector<Tensor> out;
  for (int64_t t0 = 0; t0 < len;) {
    int64_t t1 = std::min(len, t0 + config.segment - r.pos % config.segment);
    for (int64_t t = t0 + 1; t < t1; ++t)
      if (!resets_at(t).empty()) t1 = t;
    const std::vector<float> lanes = resets_at(t0);
    if (!lanes.empty()) reset_lanes(r, lanes);
    out.push_back(run(h.narrow(1, t0, t1 - t0), r));
    t0 = t1;
  }
  save(r, s);
  return head(out.size() == 1 ? out[0] : concat(out, 1));
}

double CrtModel::cell_flops() const {
  // 2 FLOPs per weight of the cell's matrices (nc_gru: its skew parameter stands for W_c h; the
  // solve that builds W_c, O(D^3) once per call, is left out).
  const nn::Module* m = gru ? static_cast<const nn::Module*>(gru.get()) : nc_gru.get();
  double f = 0;
  if (m)
    for (const auto& p : m->named_parameters())
      if (p.tensor.dim() == 2) f += 2.0 * double(p.tensor.numel());
  return f;
}

ModelInfo CrtModel::info(int64_t context) const {
  const double L = double(config.segment), pinned = double(config.pinned());
  ModelInfo m;
  m.parameters = num_parameters();
  // Per token: the head and every layer, a token seeing on average pinned + (L + 1) / 2 rows.
  m.flops_per_token = 2.0 * double(config.d_model) * double(config.io.out_dim);
  for (const auto& l : layers) m.flops_per_token += l->flops_per_row(pinned + (L + 1) / 2);
  // Per segment, shared by its L tokens: the memory slot, the write slot, the memory update.
  double per_segment = 0;
  if (config.memory != CrtMemory::none) {
    for (const auto& l : layers) per_segment += l->flops_per_row(1);
    if (config.summary == CrtSummary::write)
      for (const auto& l : layers) per_segment += l->flops_per_row(pinned + L + 1);
    if (!config.clear_memory) {
      if (config.summary == CrtSummary::rnn)
        m.flops_per_token += cell_flops();
      else
        per_segment += cell_flops();
    }
  }
  m.flops_per_token += per_segment / L;
  m.state_bytes = init_state(1).bytes();
  m.constant_state = true;
  return m;
}

namespace {

const ModelRegistration kRegistered("crt", [](const json& config, const ModelIO& io,
                                              uint64_t seed) {
  return std::make_shared<CrtModel>(CrtConfig::from_json(config, io), seed);
});

}  // namespace

}  // namespace rill
