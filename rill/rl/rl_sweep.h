// One command per experiment: every model of a sweep trained on every environment setting with
// every seed (rill rl-sweep SWEEP.json), then one table and one plot.
//   {"base": {...rl config fields: algo, envs, rollout, env_steps, lr, ...},
//    "models": {"arelit_r2": "configs/rl/models/arelit_r2.json", "lstm": {...model config...}},
//    "model_overrides": {"gtrxl_m128": {"lr": 5e-4, "ent_coef": 0.01}},   (optional)
//    "envs": [{"type": "tmazev2", "corridor": 50}, ...],
//    "seeds": [1, 2, 3], "out_dir": "runs/rl/tmaze"}
// A model given as a path is read from the file (a bare model config, or a run config whose
// "model" is taken). Run (env i, model m, seed s) goes under out_dir/env<i>/<m>/seed<s>; a run
// whose result.json is there for the same config is not trained again (an interrupted sweep
// continues where it stopped).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rill/rl/rl_trainer.h"

namespace rill::rl {

struct RlSweep {
  nlohmann::json base = nlohmann::json::object();
  std::vector<std::pair<std::string, nlohmann::json>> models;  // name, model config
  nlohmann::json overrides = nlohmann::json::object();         // name -> rl config fields
  std::vector<nlohmann::json> envs;
  std::vector<uint64_t> seeds;
  std::string out_dir = "runs/rl/sweep";

  static RlSweep from_json(const nlohmann::json& j);
  // The config of one run, validated.
  RlConfig run_config(size_t env, size_t model, uint64_t seed) const;
};

struct RlSweepRow {
  std::string env, model;  // the environment's spec name, the model's sweep name
  double optimal_return = 0, memoryless_return = 0;  // the environment's, NaN where unknown
  bool has_success = false;                          // its episodes succeed or fail
  uint64_t seed = 0;
  RlResult result;
  std::string out_dir;
};

// Runs every cell (reusing finished ones); `events` reports each run's updates.
std::vector<RlSweepRow> run_rl_sweep(const RlSweep& sweep, const RlEvents& events = {});

// One row per (environment, model): means over seeds (± the standard deviation where there are
// several), how many seeds solved and the median steps to solve among them; then each
// environment's optimal and best memoryless returns, where known.
std::string rl_sweep_markdown(const std::vector<RlSweepRow>& rows);

// One panel per environment, the training return against environment steps, one curve per run.
void write_rl_sweep_plot(const std::string& path, const std::vector<RlSweepRow>& rows);

}  // namespace rill::rl
