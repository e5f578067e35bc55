// Vectorised environments with auto-reset (see vec_env.h).
#include "rill/rl/vec_env.h"

#include "rill/core/error.h"
#include "rill/core/rng.h"

namespace rill::rl {

using nlohmann::json;

json episode_record_json(const EpisodeRecord& e) { return {e.ret, e.length, e.success, e.copy}; }

EpisodeRecord episode_record_from_json(const json& j) {
  return {j.at(0).get<double>(), j.at(1).get<int64_t>(), j.at(2).get<bool>(),
          j.at(3).get<int64_t>()};
}

uint64_t copy_seed(uint64_t seed, int64_t copy) {
  const auto r = philox4x32(seed ^ 0xc0b1e5eedULL, uint64_t(copy));
  return (uint64_t(r[0]) << 32) | r[1];
}

VecEnv::VecEnv(const json& env_config, int64_t copies, uint64_t seed)
    : config_(env_config), seed_(seed) {
  RILL_CHECK(copies >= 1 && copies <= 65536,
             "[config] the number of environment copies is {}; it must be 1 .. 65536", copies);
  for (int64_t i = 0; i < copies; ++i) envs_.push_back(make_env(env_config));
  const int64_t f = spec().obs_dim;
  episode_.assign(copies, 0);
  running_return_.assign(copies, 0);
  running_length_.assign(copies, 0);
  obs_.assign(copies * f, 0.f);
  first_.assign(copies, 1);
  for (int64_t i = 0; i < copies; ++i) envs_[i]->reset(copy_seed(seed, i), 0, &obs_[i * f]);
}

void VecEnv::step(const std::vector<int64_t>& actions, std::vector<float>& rewards,
                  std::vector<uint8_t>& dones) {
  const int64_t n = copies(), f = spec().obs_dim;
  RILL_CHECK(int64_t(actions.size()) == n, "[env] {} actions for {} environment copies",
             actions.size(), n);
  rewards.assign(n, 0.f);
  dones.assign(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    const StepResult r = envs_[i]->step(actions[i], &obs_[i * f]);
    rewards[i] = float(r.reward);
    running_return_[i] += r.reward;
    running_length_[i] += 1;
    first_[i] = 0;
    if (!r.done()) continue;
    dones[i] = 1;
    finished_.push_back({running_return_[i], running_length_[i], r.success, i});
    ++episodes_done_;
    running_return_[i] = 0, running_length_[i] = 0;
    envs_[i]->reset(copy_seed(seed_, i), ++episode_[i], &obs_[i * f]);
    first_[i] = 1;
  }
}

std::vector<EpisodeRecord> VecEnv::take_finished() {
  std::vector<EpisodeRecord> out;
  out.swap(finished_);
  return out;
}

json VecEnv::save() const {
  json copies = json::array();
  for (size_t i = 0; i < envs_.size(); ++i)
    copies.push_back({{"env", envs_[i]->save()},
                      {"episode", episode_[i]},
                      {"return", running_return_[i]},
                      {"length", running_length_[i]}});
  json finished = json::array();
  for (const auto& e : finished_) finished.push_back(episode_record_json(e));
  return {{"config", config_},
          {"seed", seed_},
          {"copies", copies},
          {"obs", obs_},
          {"first", first_},
          {"finished", finished},
          {"episodes_done", episodes_done_}};
}

void VecEnv::load(const json& s) {
  const int64_t n = copies();
  try {
    RILL_CHECK(s.at("config") == config_ && s.at("seed").get<uint64_t>() == seed_,
               "[env] a saved environment state of {} (seed {}), but this run has {} (seed {})",
               s.at("config").dump(), s.at("seed").dump(), config_.dump(), seed_);
    const json& copies = s.at("copies");
    RILL_CHECK(copies.is_array() && int64_t(copies.size()) == n,
               "[env] a saved environment state of {} copies, but this run has {}",
               copies.is_array() ? copies.size() : 0, n);
    auto obs = s.at("obs").get<std::vector<float>>();
    auto first = s.at("first").get<std::vector<uint8_t>>();
    RILL_CHECK(obs.size() == obs_.size() && first.size() == first_.size(),
               "[env] a saved environment state with {} observation values and {} flags; "
               "expected {} and {}",
               obs.size(), first.size(), obs_.size(), first_.size());
    std::vector<EpisodeRecord> finished;
    for (const json& e : s.at("finished")) finished.push_back(episode_record_from_json(e));
    for (int64_t i = 0; i < n; ++i) {
      envs_[i]->load(copies[i].at("env"));
      episode_[i] = copies[i].at("episode").get<uint64_t>();
      running_return_[i] = copies[i].at("return").get<double>();
      running_length_[i] = copies[i].at("length").get<int64_t>();
    }
    obs_ = std::move(obs), first_ = std::move(first), finished_ = std::move(finished);
    episodes_done_ = s.at("episodes_done").get<int64_t>();
  } catch (const json::exception& e) {
    fail("[env] a malformed saved environment state: {}", e.what());
  }
}

}  // namespace rill::rl
