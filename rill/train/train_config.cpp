#include "rill/train/train_config.h"

#include <fstream>
#include <set>

namespace rill {

using nlohmann::json;

namespace {

template <class T>
void read(const json& j, const char* key, T& out, std::set<std::string>& seen) {
  seen.insert(key);
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const json::exception&) {
    fail("[config] \"{}\" has the wrong type: {}", key, j.at(key).dump());
  }
}

}  // namespace

TrainConfig TrainConfig::from_json(const json& j) {
  RILL_CHECK(j.is_object(), "[config] the training config must be a JSON object");
  TrainConfig c;
  std::set<std::string> seen;
  read(j, "corpus", c.corpus, seen);
  read(j, "data_dir", c.data_dir, seen);
  read(j, "out_dir", c.out_dir, seen);
  read(j, "batch", c.batch, seen);
  read(j, "seq", c.seq, seen);
  read(j, "steps", c.steps, seen);
  read(j, "time_limit_s", c.time_limit_s, seen);
  read(j, "lr", c.lr, seen);
  read(j, "min_lr", c.min_lr, seen);
  read(j, "weight_decay", c.weight_decay, seen);
  read(j, "clip", c.clip, seen);
  read(j, "beta1", c.beta1, seen);
  read(j, "beta2", c.beta2, seen);
  read(j, "warmup", c.warmup, seen);
  read(j, "carry_state", c.carry_state, seen);
  read(j, "reset_every", c.reset_every, seen);
  read(j, "eval_every", c.eval_every, seen);
  read(j, "eval_segments", c.eval_segments, seen);
  read(j, "checkpoint_every", c.checkpoint_every, seen);
  read(j, "seed", c.seed, seen);
  seen.insert("model");
  if (j.contains("model")) c.model = LMConfig::from_json(j["model"]);
  for (const auto& [k, v] : j.items())
    RILL_CHECK(seen.count(k), "[config] unknown key \"{}\" in the training config", k);
  RILL_CHECK(c.batch > 0 && c.seq > 0 && c.steps > 0,
             "[config] batch, seq and steps must be positive (got {}, {}, {})", c.batch, c.seq,
             c.steps);
  RILL_CHECK(c.lr > 0 && c.min_lr >= 0 && c.min_lr <= c.lr,
             "[config] need lr > 0 and 0 <= min_lr <= lr (got {}, {})", c.lr, c.min_lr);
  RILL_CHECK(c.warmup >= 0 && c.warmup < c.steps, "[config] warmup {} must be below steps {}",
             c.warmup, c.steps);
  RILL_CHECK(c.reset_every >= 0, "[config] reset_every must be >= 0, got {}", c.reset_every);
  RILL_CHECK(c.eval_every > 0 && c.eval_segments > 0 && c.checkpoint_every > 0,
             "[config] eval_every, eval_segments and checkpoint_every must be positive");
  return c;
}

TrainConfig TrainConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  RILL_CHECK(in.good(), "[config] cannot read {}", path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("[config] {} is not valid JSON: {}", path, e.what());
  }
  try {
    return from_json(j);
  } catch (const Error& e) {
    fail("{} (in {})", e.what(), path);
  }
}

json TrainConfig::to_json() const {
  return {{"corpus", corpus},       {"data_dir", data_dir},
          {"out_dir", out_dir},     {"model", model.to_json()},
          {"batch", batch},         {"seq", seq},
          {"steps", steps},         {"time_limit_s", time_limit_s},
          {"lr", lr},               {"min_lr", min_lr},
          {"weight_decay", weight_decay}, {"clip", clip},
          {"beta1", beta1},         {"beta2", beta2},
          {"warmup", warmup},       {"carry_state", carry_state},
          {"reset_every", reset_every},
          {"eval_every", eval_every}, {"eval_segments", eval_segments},
          {"checkpoint_every", checkpoint_every}, {"seed", seed}};
}

}  // namespace rill
