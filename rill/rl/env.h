// Environments for reinforcement learning with memory: small, exact, seeded and deterministic
// partially observable tasks written in C++ (no gymnasium here), each with an oracle that
// knows the hidden state, so tests can check an optimal policy's return against the
// specification. One Env is one episode at a time; VecEnv (vec_env.h) runs many copies.
//
// Randomness: episode e of a stream seeded s draws everything from Philox at the key
// episode_key(s, e) and a counter that the episode advances, so an episode is reproducible on
// its own (a copy of a vectorised environment equals a single one reset with the same seed and
// episode), and the whole of an environment's state is a few numbers (save/load), which is
// what lets a checkpoint resume a run mid-episode exactly.
//
// Episodes end by termination (the task is over) or truncation (max_steps reached: the time
// limit of gymnasium's TimeLimit wrapper); the trainer treats both as the end (AGaLiTe does).
// Environments register by name: make_env({"type": "tmazev2", "corridor": 50}).
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rill::rl {

struct EnvSpec {
  std::string name;       // the registered type plus its settings, e.g. "tmazev2 corridor 50"
  int64_t obs_dim = 0;    // an observation is obs_dim floats
  int64_t actions = 0;    // discrete actions 0 .. actions-1
  int64_t max_steps = 0;  // an episode is truncated after this many steps
  // Expected episodic return of an optimal policy (the oracle's), and of the best policy that
  // sees only the current observation; NaN where not known in closed form.
  double optimal_return = std::numeric_limits<double>::quiet_NaN();
  double memoryless_return = std::numeric_limits<double>::quiet_NaN();
  bool has_success = false;  // episodes end in success or failure (T-Maze, memory_len)
};

struct StepResult {
  double reward = 0;
  bool terminated = false;  // the task is over
  bool truncated = false;   // max_steps reached
  bool success = false;     // at the end of an episode of an env with has_success
  bool done() const { return terminated || truncated; }
};

class Env {
 public:
  virtual ~Env() = default;
  virtual const EnvSpec& spec() const = 0;
  // Starts episode `episode` of the stream `seed` and writes its first observation to obs
  // [obs_dim].
  virtual void reset(uint64_t seed, uint64_t episode, float* obs) = 0;
  // Takes an action in 0 .. actions-1 (others are refused with an error naming the range) and
  // writes the next observation; after the episode ends the observation is unspecified and
  // step may not be called again before reset.
  virtual StepResult step(int64_t action, float* obs) = 0;
  // The action an optimal policy takes now, knowing the hidden state (tests and baselines).
  virtual int64_t oracle_action() const = 0;
  // The whole mid-episode state, and back (load then step continues exactly).
  virtual nlohmann::json save() const = 0;
  virtual void load(const nlohmann::json& state) = 0;
};

// The Philox key of episode `episode` of the stream `seed`.
uint64_t episode_key(uint64_t seed, uint64_t episode);

// A counter-based draw source for one episode: the key and how many blocks were used.
struct EpisodeRng {
  uint64_t key = 0, counter = 0;
  uint32_t next();           // 32 random bits
  int64_t below(int64_t n);  // uniform in [0, n), n > 0
  nlohmann::json save() const;
  void load(const nlohmann::json& j);
};

// Builds an environment from {"type": NAME, ...settings}; unknown types and settings are
// errors that name what exists. The config's "type" picks the factory, which is handed the
// other settings.
using EnvFactory = std::function<std::unique_ptr<Env>(const nlohmann::json& config)>;
std::unique_ptr<Env> make_env(const nlohmann::json& config);
std::vector<std::string> registered_envs();
struct EnvRegistration {
  EnvRegistration(const std::string& type, EnvFactory factory);
};

}  // namespace rill::rl
