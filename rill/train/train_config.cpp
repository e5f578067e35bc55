#include "rill/train/train_config.h"

#include <fstream>

#include "rill/io/json_fields.h"

namespace rill {

using nlohmann::json;

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
  JsonFields f(j, "the training config");
  f.get("corpus", c.corpus);
  f.get("data_dir", c.data_dir);
  f.get("out_dir", c.out_dir);
  f.get("batch", c.batch);
  f.get("seq", c.seq);
  f.get("steps", c.steps);
  f.get("time_limit_s", c.time_limit_s);
  f.get("lr", c.lr);
  f.get("min_lr", c.min_lr);
  f.get("weight_decay", c.weight_decay);
  f.get("clip", c.clip);
  f.get("beta1", c.beta1);
  f.get("beta2", c.beta2);
  f.get("warmup", c.warmup);
  f.get("carry_state", c.carry_state);
  f.get("reset_every", c.reset_every);
  f.get("eval_every", c.eval_every);
  f.get("eval_segments", c.eval_segments);
  f.get("checkpoint_every", c.checkpoint_every);
  f.get("seed", c.seed);
  if (const json* m = f.raw("model")) c.model = LMConfig::from_json(*m);
  f.finish();
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
  return {{"corpus", corpus},
          {"data_dir", data_dir},
          {"out_dir", out_dir},
          {"model", model.to_json()},
          {"batch", batch},
          {"seq", seq},
          {"steps", steps},
          {"time_limit_s", time_limit_s},
          {"lr", lr},
          {"min_lr", min_lr},
          {"weight_decay", weight_decay},
          {"clip", clip},
          {"beta1", beta1},
          {"beta2", beta2},
          {"warmup", warmup},
          {"carry_state", carry_state},
          {"reset_every", reset_every},
          {"eval_every", eval_every},
          {"eval_segments", eval_segments},
          {"checkpoint_every", checkpoint_every},
          {"seed", seed}};
}

}  // namespace rill
