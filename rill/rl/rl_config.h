// RlConfig: everything one actor-critic run needs, read strictly from JSON (an unknown key, a
// wrong type or a value out of range is an error naming the field). Defaults are the AGaLiTe
// T-Maze recipe (relit.md section 2: A2C with lambda-returns, 8 environments, rollout 256,
// gamma 0.99, lambda 0.95, Adam, gradient clip 0.5, heads of 128) except the budget.
//   {"env": {"type": "tmazev2", "corridor": 50}, "model": {...a model config...},
//    "algo": "a2c" | "ppo", "envs": 8, "rollout": 256, "env_steps": 5000000, ...}
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace rill::rl {

struct RlConfig {
  nlohmann::json env;    // make_env's config
  nlohmann::json model;  // the recurrent trunk (make_model's config)
  int64_t head_hidden = 128;
  std::string algo = "a2c";    // "a2c" (lambda-returns) or "ppo" (GAE, clipping, epochs)
  int64_t envs = 8;            // environment copies stepped together (lanes)
  int64_t rollout = 256;       // steps per lane per update (the truncated-BPTT length)
  int64_t env_steps = 100000;  // the budget in environment steps, all lanes together
  double time_limit_s = 0;     // stop after this much training time (0: none)
  double gamma = 0.99, lambda = 0.95;
  double lr = 1e-4, ent_coef = 1e-3, vf_coef = 0.5;
  double clip_grad = 0.5;  // global gradient norm (0: none)
  double ppo_clip = 0.2;
  int64_t epochs = 4, minibatches = 4;  // PPO: passes over the rollout, lane groups per pass
  bool normalize_advantages = false;    // per (mini)batch: zero mean, unit deviation
  int64_t eval_episodes = 100;          // episodes on fresh seeds at the end (0: none)
  bool eval_greedy = false;             // evaluate the argmax action instead of sampling
  int64_t window = 100;                 // episodes in the running mean return / success
  double solve_fraction = 0.9;  // solved: success (or return / optimal) of the window above this
  // The agent's state is reset before every observation: the same model with its memory cut, a
  // baseline that shows what memory is worth (it can only act on the current observation).
  bool memoryless = false;
  int64_t checkpoint_every = 50;  // updates
  uint64_t seed = 0;
  std::string out_dir = "runs/rl";

  static RlConfig from_json(const nlohmann::json& j);
  static RlConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
  void validate() const;  // the rules from_json applies, for values set in code or by flags
};

}  // namespace rill::rl
