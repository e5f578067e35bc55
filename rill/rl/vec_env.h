// VecEnv: N copies of one environment stepped together, each with auto-reset: a copy whose
// episode ends starts its next episode at once, so every step returns an observation for every
// copy, and first() marks the observations that begin an episode (the reset flag the recurrent
// models take: a model's state before such an observation is a fresh one).
//
// Copy i plays episodes 0, 1, 2, ... of its own stream, seeded copy_seed(seed, i): a copy equals
// a single Env reset with that seed and episode and given the same actions (tested), so results
// do not depend on how many copies run or in what order. save()/load() hold everything, mid-
// episode, for exact resume.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "rill/rl/env.h"

namespace rill::rl {

// An episode that ended: its return (undiscounted), length in steps, where the environment has
// one its success, and the copy that played it.
struct EpisodeRecord {
  double ret = 0;
  int64_t length = 0;
  bool success = false;
  int64_t copy = 0;
};

// [return, length, success, copy], the form saved states hold, and back (a malformed one throws
// nlohmann::json::exception; the loaders turn that into an error naming what they read).
nlohmann::json episode_record_json(const EpisodeRecord& e);
EpisodeRecord episode_record_from_json(const nlohmann::json& j);

uint64_t copy_seed(uint64_t seed, int64_t copy);

class VecEnv {
 public:
  VecEnv(const nlohmann::json& env_config, int64_t copies, uint64_t seed);

  const EnvSpec& spec() const { return envs_[0]->spec(); }
  int64_t copies() const { return int64_t(envs_.size()); }
  const nlohmann::json& config() const { return config_; }
  // The current observation of every copy, [N, obs_dim] row-major, and 1 where it begins an
  // episode.
  const std::vector<float>& obs() const { return obs_; }
  const std::vector<uint8_t>& first() const { return first_; }

  // Steps every copy with actions [N]; writes the rewards [N] and done flags [N] (the episode
  // ended with this step; the copy is already reset).
  void step(const std::vector<int64_t>& actions, std::vector<float>& rewards,
            std::vector<uint8_t>& dones);
  // The episodes that ended since the last call, in the order they ended.
  std::vector<EpisodeRecord> take_finished();
  int64_t episodes_done() const { return episodes_done_; }

  nlohmann::json save() const;
  void load(const nlohmann::json& state);  // refuses a state of another config or copy count

 private:
  nlohmann::json config_;
  uint64_t seed_;
  std::vector<std::unique_ptr<Env>> envs_;
  std::vector<uint64_t> episode_;       // [N] the episode each copy is playing
  std::vector<double> running_return_;  // [N]
  std::vector<int64_t> running_length_;
  std::vector<float> obs_;
  std::vector<uint8_t> first_;
  std::vector<EpisodeRecord> finished_;
  int64_t episodes_done_ = 0;
};

}  // namespace rill::rl
