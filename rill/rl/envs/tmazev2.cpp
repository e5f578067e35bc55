// The T-Maze with distractors of the AGaLiTe paper (Pramanik et al. 2023), task "tmazev2"
// (SimplerTMazeWDistractors in subho406/agalite src/tasks/tmaze.py; relit.md section 2).
//
// A corridor of `corridor` cells, positions 0 .. corridor-1; the junction is the last one. The
// cue (up or down) is shown only in the first observation; at the junction, up or down ends the
// episode, +4 when it matches the cue and -1 otherwise. Every other step costs -0.1. Time limit
// `max_steps` (1000 as in the paper's TimeLimit).
//   observation (16 floats): [0-1] the cue at t = 0 only (up [0, 1], down [1, 0]), zero after;
//                            [2-9] the low 8 bits of the Gray code of the position, most
//                            significant first; [10-15] six random bits, zero at t = 0
//   actions: 0 up, 1 down, 2 left, 3 right. Left and right move along the corridor (clamped);
//            up and down in the corridor, and left and right at the junction, do nothing.
// Optimal return: corridor-1 steps right at -0.1, then +4. A memoryless policy can do no better
// than guess at the junction: (4 - 1) / 2 instead of 4.
#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl {
namespace {

constexpr int64_t kObs = 16, kDistractors = 6;

class TMazeV2 : public Env {
 public:
  TMazeV2(int64_t corridor, int64_t max_steps) : corridor_(corridor) {
    spec_.name = fmt::format("tmazev2 corridor {}", corridor);
    spec_.obs_dim = kObs;
    spec_.actions = 4;
    spec_.max_steps = max_steps;
    const double walk = -0.1 * double(corridor - 1);
    spec_.optimal_return = walk + 4.0;
    spec_.memoryless_return = walk + 1.5;
    spec_.has_success = true;
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    rng_ = {episode_key(seed, episode), 0};
    cue_ = rng_.next() & 1;  // 0 up, 1 down
    pos_ = 0, t_ = 0;
    over_ = false;
    observe(obs, true);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(!over_, "[env] tmazev2: step after the episode ended (reset first)");
    RILL_CHECK(action >= 0 && action < 4, "[env] tmazev2: action {} is not in 0 .. 3", action);
    StepResult r;
    r.reward = -0.1;
    if (pos_ == corridor_ - 1 && action <= 1) {
      r.terminated = true;
      r.success = action == cue_;
      r.reward = r.success ? 4.0 : -1.0;
    } else if (pos_ < corridor_ - 1 && action == 2) {
      pos_ = std::max<int64_t>(pos_ - 1, 0);
    } else if (pos_ < corridor_ - 1 && action == 3) {
      pos_ += 1;
    }
    ++t_;
    r.truncated = !r.terminated && t_ >= spec_.max_steps;
    over_ = r.done();
    observe(obs, false);
    return r;
  }

  int64_t oracle_action() const override { return pos_ == corridor_ - 1 ? cue_ : 3; }

  nlohmann::json save() const override {
    return {{"rng", rng_.save()}, {"cue", cue_}, {"pos", pos_}, {"t", t_}, {"over", over_}};
  }

  void load(const nlohmann::json& j) override {
    require_keys(j, {"rng", "cue", "pos", "t", "over"}, "a saved tmazev2 state");
    JsonFields f(j, "a saved tmazev2 state");
    nlohmann::json rng;
    int64_t cue = 0, pos = 0, t = 0;
    bool over = false;
    f.get("rng", rng);
    f.get("cue", cue);
    f.get("pos", pos);
    f.get("t", t);
    f.get("over", over);
    f.check("cue", cue, cue == 0 || cue == 1, "0 or 1");
    f.check("pos", pos, pos >= 0 && pos < corridor_, "a position in the corridor");
    f.check("t", t, t >= 0 && t <= spec_.max_steps, "within the time limit");
    f.finish();
    rng_.load(rng);
    cue_ = cue, pos_ = pos, t_ = t, over_ = over;
  }

 private:
  void observe(float* obs, bool first) {
    std::fill(obs, obs + kObs, 0.f);
    if (first) {
      obs[0] = cue_ == 1 ? 1.f : 0.f;
      obs[1] = cue_ == 0 ? 1.f : 0.f;
    }
    const uint64_t gray = uint64_t(pos_) ^ (uint64_t(pos_) >> 1);
    for (int j = 0; j < 8; ++j) obs[2 + j] = float((gray >> (7 - j)) & 1);
    if (first) return;
    const uint32_t bits = rng_.next();
    for (int j = 0; j < kDistractors; ++j) obs[10 + j] = float((bits >> j) & 1);
  }

  int64_t corridor_;
  EnvSpec spec_;
  EpisodeRng rng_;
  int64_t cue_ = 0, pos_ = 0, t_ = 0;
  bool over_ = true;
};

const EnvRegistration kRegistered("tmazev2", [](const nlohmann::json& config) {
  JsonFields f(config, "the tmazev2 environment");
  int64_t corridor = 50, max_steps = 1000;
  f.get("corridor", corridor);
  f.get("max_steps", max_steps);
  f.check("corridor", corridor, corridor >= 2 && corridor <= 100000, "between 2 and 100000");
  f.check("max_steps", max_steps, max_steps >= corridor && max_steps <= 10000000,
          "at least the corridor (the junction must be reachable) and at most 10^7");
  f.finish();
  return std::make_unique<TMazeV2>(corridor, max_steps);
});

}  // namespace
}  // namespace rill::rl
