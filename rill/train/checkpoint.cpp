// Checkpoint writing and reading, with strict validation of the metadata.
#include "rill/train/checkpoint.h"

#include <vector>

#include "rill/data/sha256.h"
#include "rill/io/safetensors.h"

namespace rill {

using nlohmann::json;

namespace {

constexpr const char* kFormat = "rill-checkpoint-2";

// The differences between two JSON configs, as "key: a vs b" lines (flattened keys).
void diff_json(const json& a, const json& b, const std::string& prefix,
               std::vector<std::string>& out) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [k, v] : a.items()) {
      const std::string key = prefix.empty() ? k : prefix + "." + k;
      if (!b.contains(k))
        out.push_back(fmt::format("{}: {} in the checkpoint, absent in the model", key, v.dump()));
      else
        diff_json(v, b[k], key, out);
    }
    for (const auto& [k, v] : b.items())
      if (!a.contains(k))
        out.push_back(fmt::format("{}: absent in the checkpoint, {} in the model",
                                  prefix.empty() ? k : prefix + "." + k, v.dump()));
  } else if (a != b) {
    out.push_back(fmt::format("{}: {} in the checkpoint, {} in the model",
                              prefix.empty() ? "(root)" : prefix, a.dump(), b.dump()));
  }
}

json parse_entry(const std::map<std::string, std::string>& meta, const std::string& key,
                 const std::string& path, bool required = true) {
  auto it = meta.find(key);
  if (it == meta.end()) {
    RILL_CHECK(!required,
               "[checkpoint] {} has no \"{}\" metadata: it was not written by rill's "
               "trainer, or was damaged",
               path, key);
    return json();
  }
  try {
    return json::parse(it->second);
  } catch (const json::exception& e) {
    fail("[checkpoint] {}: the \"{}\" metadata is not valid JSON: {}", path, key, e.what());
  }
}

}  // namespace

std::string weights_sha256(const nn::Module& model) {
  data::Sha256 h;
  for (const auto& [name, t] : model.state_dict()) {
    Tensor c = t.contiguous();
    const std::string head =
        fmt::format("{}|{}|{};", name, dtype_name(c.dtype()), shape_str(c.shape()));
    h.update(head.data(), head.size());
    h.update(c.data_ptr(), c.nbytes());
  }
  return h.finish_hex();
}

void save_checkpoint(const std::string& path, const CheckpointContents& c) {
  RILL_CHECK(c.weights != nullptr, "[checkpoint] nothing to save: no model");
  NamedTensors tensors;
  for (auto& [name, t] : c.weights->state_dict()) tensors.emplace_back("model." + name, t);
  if (c.optimizer)
    for (auto& [name, t] : c.optimizer->state()) tensors.emplace_back("optim." + name, t);
  if (c.state)
    for (const auto& [name, t] : c.state->tensors()) tensors.emplace_back("state." + name, t);
  const TrainingProgress& p = c.progress;
  json rngs = json::object();
  for (const auto& [name, g] : p.rngs) rngs[name] = {g.seed(), g.offset()};
  json training = {{"step", p.step},
                   {"data_position", p.data_position},
                   {"rngs", rngs},
                   {"horizon", p.horizon},
                   {"elapsed_s", p.elapsed_s}};
  std::map<std::string, std::string> meta;
  meta["format"] = kFormat;
  meta["rill.model"] = c.model.dump();
  meta["rill.task"] = c.task.dump();
  if (!c.run.is_null()) meta["rill.run"] = c.run.dump();
  meta["rill.training"] = training.dump();
  meta["rill.weights_sha256"] = weights_sha256(*c.weights);
  save_safetensors(path, tensors, meta);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  SafetensorsReader r(path);
  const auto& meta = r.metadata();
  auto f = meta.find("format");
  RILL_CHECK(f != meta.end(),
             "[checkpoint] {} is a safetensors file without rill's metadata (no \"format\" "
             "entry): it is not a rill checkpoint",
             path);
  RILL_CHECK(f->second == kFormat,
             "[checkpoint] {} has format \"{}\", not \"{}\": it was written by another version "
             "of rill or another program",
             path, f->second, kFormat);
  CheckpointInfo info;
  info.model = parse_entry(meta, "rill.model", path);
  info.task = parse_entry(meta, "rill.task", path);
  info.run = parse_entry(meta, "rill.run", path, false);
  RILL_CHECK(info.model.is_object(), "[checkpoint] {}: the model config is not an object", path);
  const json t = parse_entry(meta, "rill.training", path);
  try {
    info.progress.step = t.at("step").get<int64_t>();
    info.progress.data_position = t.at("data_position").get<uint64_t>();
    info.progress.horizon = t.at("horizon").get<int64_t>();
    info.progress.elapsed_s = t.at("elapsed_s").get<double>();
    for (const auto& [name, v] : t.at("rngs").items()) {
      Generator g;
      g.set_state(v.at(0).get<uint64_t>(), v.at(1).get<uint64_t>());
      info.progress.rngs[name] = g;
    }
  } catch (const json::exception& e) {
    fail("[checkpoint] {}: malformed training progress: {}", path, e.what());
  }
  auto w = meta.find("rill.weights_sha256");
  RILL_CHECK(w != meta.end(), "[checkpoint] {} has no \"rill.weights_sha256\" metadata", path);
  info.weights_sha256 = w->second;
  for (const std::string& name : r.names()) {
    info.has_optimizer = info.has_optimizer || name.rfind("optim.", 0) == 0;
    info.has_state = info.has_state || name.rfind("state.", 0) == 0;
  }
  return info;
}

void load_checkpoint(const std::string& path, const json& model_config, nn::Module& model,
                     optim::Optimizer* optimizer, State* state) {
  const CheckpointInfo info = read_checkpoint_info(path);
  std::vector<std::string> diffs;
  diff_json(info.model, model_config, "", diffs);
  RILL_CHECK(diffs.empty(), "[checkpoint] {} was written for another model config: {}", path,
             fmt::join(diffs, "; "));
  SafetensorsReader r(path);
  NamedTensors model_state, optim_state;
  State carried;
  for (const std::string& name : r.names()) {
    if (name.rfind("model.", 0) == 0)
      model_state.emplace_back(name.substr(6), r.load(name));
    else if (name.rfind("optim.", 0) == 0)
      optim_state.emplace_back(name.substr(6), r.load(name));
    else if (name.rfind("state.", 0) == 0)
      carried.set(name.substr(6), r.load(name));
    else
      fail("[checkpoint] {}: unexpected tensor \"{}\"", path, name);
  }
  RILL_CHECK(!optimizer || !optim_state.empty(), "[checkpoint] {} holds no optimiser state", path);
  RILL_CHECK(!state || !carried.empty(), "[checkpoint] {} holds no carried recurrent state", path);
  if (state) {
    // The carried state must fit the run it is loaded into: the same tensors, dtypes, ranks and
    // batch (a KV cache's length grows, so the other sizes may differ from a fresh state's).
    for (const auto& [name, t] : state->tensors()) {
      RILL_CHECK(carried.has(name), "[checkpoint] {}: the carried state lacks \"{}\"", path, name);
      const Tensor s = carried.get(name);
      RILL_CHECK(
          s.dtype() == t.dtype() && s.dim() == t.dim() && (t.dim() == 0 || s.size(0) == t.size(0)),
          "[checkpoint] {}: carried state \"{}\" is {} {} but the run needs {} {}", path, name,
          dtype_name(s.dtype()), shape_str(s.shape()), dtype_name(t.dtype()), shape_str(t.shape()));
    }
    RILL_CHECK(carried.tensors().size() == state->tensors().size(),
               "[checkpoint] {}: the carried state has {} tensors, the run's has {}", path,
               carried.tensors().size(), state->tensors().size());
  }
  try {
    model.load_state_dict(model_state);
  } catch (const Error& e) {
    fail("[checkpoint] {}: {}", path, e.what());
  }
  if (optimizer) optimizer->load_state(optim_state);
  if (state) *state = carried;
}

LoadedModel load_model(const std::string& path) {
  LoadedModel l;
  l.info = read_checkpoint_info(path);
  try {
    l.model = make_model(l.info.model, {}, 0);
  } catch (const Error& e) {
    fail("[checkpoint] {}: its model config cannot be built: {}", path, e.what());
  }
  load_checkpoint(path, l.model->config_json(), *l.model);
  l.model->eval();
  return l;
}

}  // namespace rill
