// Actor-critic training of a recurrent agent on a vectorised environment: A2C with lambda-returns
// (the AGaLiTe T-Maze recipe) or PPO with GAE, clipping and minibatch epochs.
//
// One update: the agent acts for `rollout` steps in every lane (step form, no tape), sampling
// from its policy with a counter-based generator; the trunk's state is fresh wherever an episode
// begins. Then the whole rollout is replayed in the parallel form from the state stored at its
// start (truncated BPTT over the rollout), with the same episode-start flags, and the loss is
// minimised (A2C: one step; PPO: `epochs` passes over groups of whole lanes, each group starting
// from its lanes' slice of the stored state). The carried state then goes on from where acting
// left it.
//
// Everything the run depends on (weights, optimiser, carried state, every environment copy
// mid-episode, the sampler's counter, the recent episodes) is in the checkpoint, so a resumed
// run continues exactly (tested bitwise).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "rill/rl/actor_critic.h"
#include "rill/rl/rl_config.h"

namespace rill::rl {

struct RlUpdateEvent {
  int64_t update = 0, env_steps = 0, env_steps_target = 0, episodes = 0;
  double mean_return = 0, success = 0;  // over the last `window` episodes
  bool has_success = false;
  double episodes_per_s = 0, env_steps_per_s = 0, elapsed_s = 0;
};

struct RlEvents {
  std::function<void(const RlUpdateEvent&)> on_update;
  std::function<void(const std::string&)> on_message;
  std::function<bool()> should_stop;  // e.g. Ctrl-C: save and stop
  std::function<double()> clock;      // seconds; default steady_clock
};

// A policy's score over fresh episodes.
struct PolicyScore {
  int64_t episodes = 0;
  double mean_return = 0, success = 0, mean_length = 0;
};

struct RlResult {
  int64_t updates = 0, env_steps = 0, episodes = 0;
  double seconds = 0, env_steps_per_s = 0;
  double final_return = 0, final_success = 0;  // the last window of training episodes
  int64_t steps_to_solve = -1;  // first env step where the window was solved (-1: never)
  PolicyScore eval;             // on seeds training never saw (sampled, or greedy)
  double step_us = 0;           // one action at batch 1, one thread (median), microseconds
  size_t state_bytes = 0;       // the agent's recurrent state per lane
  int64_t parameters = 0;
  bool interrupted = false, out_of_time = false;
  nlohmann::json to_json() const;
  static RlResult from_json(const nlohmann::json& j);  // result.json back
};

RlResult train_rl(const RlConfig& config, bool resume, const RlEvents& events = {});

// Plays `episodes` episodes of the stream `seed` (lanes at once, each lane its share), acting
// greedily (argmax) or by sampling, with the agent's memory cut at every step when memoryless;
// the agent's weights are not changed.
PolicyScore evaluate_policy(ActorCritic& agent, const nlohmann::json& env, int64_t episodes,
                            uint64_t seed, bool greedy, bool memoryless = false,
                            int64_t lanes = 16);

// Median microseconds of one agent step at batch 1 on one thread (after a warm-up), over `steps`
// steps.
double step_microseconds(ActorCritic& agent, int64_t steps = 200);

// Where a run's files go.
std::string rl_checkpoint_path(const std::string& out_dir);

}  // namespace rill::rl
