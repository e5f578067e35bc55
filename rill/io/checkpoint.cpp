#include "rill/io/checkpoint.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "rill/io/safetensors.h"

namespace rill {

using nlohmann::json;

namespace {

constexpr const char* kFormat = "rill-checkpoint-1";

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

json parse_config(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail("[checkpoint] {}: the config is not valid JSON: {}", where, e.what());
  }
}

}  // namespace

void save_checkpoint(const std::string& path, const std::string& config_json,
                     const nn::Module& model, const optim::Optimizer* optimizer,
                     const TrainingProgress& progress,
                     const std::map<std::string, std::string>& extra) {
  parse_config(config_json, path);
  NamedTensors tensors;
  for (auto& [name, t] : model.state_dict()) tensors.emplace_back("model." + name, t);
  if (optimizer)
    for (auto& [name, t] : optimizer->state()) tensors.emplace_back("optim." + name, t);
  json training = {{"step", progress.step}, {"data_position", progress.data_position}};
  json rngs = json::object();
  for (const auto& [name, g] : progress.rngs) rngs[name] = {g.seed(), g.offset()};
  training["rngs"] = rngs;
  std::map<std::string, std::string> meta = extra;
  meta["format"] = kFormat;
  meta["rill.config"] = config_json;
  meta["rill.training"] = training.dump();
  save_safetensors(path, tensors, meta);
}

std::string checkpoint_config(const std::string& path) {
  SafetensorsReader r(path);
  auto it = r.metadata().find("format");
  RILL_CHECK(it != r.metadata().end() && it->second == kFormat,
             "[checkpoint] {} is not a rill checkpoint (metadata format is not \"{}\")", path,
             kFormat);
  auto c = r.metadata().find("rill.config");
  RILL_CHECK(c != r.metadata().end(), "[checkpoint] {} has no rill.config", path);
  return c->second;
}

std::map<std::string, std::string> checkpoint_metadata(const std::string& path) {
  checkpoint_config(path);  // refuses files that are not checkpoints
  return SafetensorsReader(path).metadata();
}

TrainingProgress load_checkpoint(const std::string& path, const std::string& config_json,
                                 nn::Module& model, optim::Optimizer* optimizer) {
  const std::string saved_config = checkpoint_config(path);
  std::vector<std::string> diffs;
  diff_json(parse_config(saved_config, path), parse_config(config_json, "the model"), "", diffs);
  RILL_CHECK(diffs.empty(), "[checkpoint] {} was written for another model config: {}", path,
             fmt::join(diffs, "; "));

  SafetensorsReader r(path);
  NamedTensors model_state, optim_state;
  for (const std::string& name : r.names()) {
    if (name.rfind("model.", 0) == 0)
      model_state.emplace_back(name.substr(6), r.load(name));
    else if (name.rfind("optim.", 0) == 0)
      optim_state.emplace_back(name.substr(6), r.load(name));
    else
      fail("[checkpoint] {}: unexpected tensor \"{}\"", path, name);
  }
  TrainingProgress progress;
  json training = parse_config(r.metadata().at("rill.training"), path);
  try {
    progress.step = training.at("step").get<int64_t>();
    progress.data_position = training.at("data_position").get<uint64_t>();
    for (const auto& [name, v] : training.at("rngs").items()) {
      Generator g;
      g.set_state(v.at(0).get<uint64_t>(), v.at(1).get<uint64_t>());
      progress.rngs[name] = g;
    }
  } catch (const json::exception& e) {
    fail("[checkpoint] {}: malformed training state: {}", path, e.what());
  }
  try {
    model.load_state_dict(model_state);
  } catch (const Error& e) {
    fail("[checkpoint] {}: {}", path, e.what());
  }
  if (optimizer) {
    RILL_CHECK(!optim_state.empty(), "[checkpoint] {} holds no optimiser state", path);
    optimizer->load_state(optim_state);
  }
  return progress;
}

}  // namespace rill
