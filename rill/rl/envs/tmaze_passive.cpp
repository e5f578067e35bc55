// The passive T-Maze of Ni et al. 2023, "When Do Transformers Shine in RL? Decoupling Memory
// from Credit Assignment" (TMazeClassicPassive in twni2016/Memory-RL envs/tmaze.py, with the
// penalty of configs/envs/tmaze_passive.py), type "tmaze_passive" (relit.md section 4).
//
// A corridor of cells x = 0 .. L (L = `corridor`, default 10) at y = 0; at the junction x = L
// the goal candidates (L, +1) and (L, -1). The agent starts at (0, 0); the goal y (+1 or -1, a
// fair coin) is shown only in the first observation. The episode lasts exactly L + 1 steps.
//   observation (2 floats, Ni's "ambiguous position"): at x = 0 [0, goal y] at t = 0 and [0, 0]
//     later; on the corridor 0 < x < L [0, 0]; at the junction or a goal candidate [1, y].
//   actions: 0 right (x+1), 1 up (y+1), 2 left (x-1), 3 down (y-1); a move off the T (into a
//     wall) leaves the agent where it is.
//   rewards: at step t = 1 .. L (after the move) -1/L when x < t (the agent fell behind the
//     walk to the junction), 0 otherwise; at the last step t = L + 1, 1 when y is the goal's y
//     and 0 otherwise (no penalty then). The episode is a success when the final y is the goal.
// Optimal return 1 (L steps right, then to the goal). A memoryless policy sees the same [1, 0]
// at the junction whatever the goal, and cannot tell the time: 0.5 at best.
#include <algorithm>

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl {
namespace {

constexpr int64_t kObs = 2, kActions = 4;

class TMazePassive : public Env {
 public:
  explicit TMazePassive(int64_t corridor) : corridor_(corridor) {
    spec_.name = fmt::format("tmaze_passive corridor {}", corridor);
    spec_.obs_dim = kObs;
    spec_.actions = kActions;
    spec_.max_steps = corridor + 1;
    spec_.optimal_return = 1.0;
    spec_.memoryless_return = 0.5;
    spec_.has_success = true;
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    rng_ = {episode_key(seed, episode), 0};
    goal_ = (rng_.next() & 1) ? 1 : -1;
    x_ = 0, y_ = 0, t_ = 0;
    over_ = false;
    observe(obs);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(!over_, "[env] tmaze_passive: step after the episode ended (reset first)");
    RILL_CHECK(action >= 0 && action < kActions,
               "[env] tmaze_passive: action {} is not in 0 .. 3 (0 right, 1 up, 2 left, 3 down)",
               action);
    static constexpr int64_t kMove[4][2] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};
    const int64_t nx = x_ + kMove[action][0], ny = y_ + kMove[action][1];
    if (on_maze(nx, ny)) x_ = nx, y_ = ny;
    ++t_;
    StepResult r;
    if (t_ >= spec_.max_steps) {
      r.terminated = true;
      r.success = y_ == goal_;
      r.reward = r.success ? 1.0 : 0.0;
    } else {
      r.reward = x_ < t_ ? -1.0 / double(corridor_) : 0.0;
    }
    over_ = r.done();
    observe(obs);
    return r;
  }

  int64_t oracle_action() const override {
    if (x_ < corridor_) return 0;  // walk right, one cell a step
    if (y_ == 0) return goal_ == 1 ? 1 : 3;
    if (y_ == goal_) return 0;  // stay: right at a goal candidate is a wall
    return goal_ == 1 ? 1 : 3;  // back towards the junction and the goal
  }

  nlohmann::json save() const override {
    return {{"rng", rng_.save()}, {"goal", goal_}, {"x", x_}, {"y", y_}, {"t", t_},
            {"over", over_}};
  }

  void load(const nlohmann::json& j) override {
    const std::string what = "a saved tmaze_passive state";
    require_keys(j, {"rng", "goal", "x", "y", "t", "over"}, what);
    JsonFields f(j, what);
    nlohmann::json rng;
    int64_t goal = 0, x = 0, y = 0, t = 0;
    bool over = false;
    f.get("rng", rng);
    f.get("goal", goal);
    f.get("x", x);
    f.get("y", y);
    f.get("t", t);
    f.get("over", over);
    f.check("goal", goal, goal == 1 || goal == -1, "1 or -1");
    f.check("x", x, x >= 0 && x <= corridor_, "a cell of the corridor, 0 .. corridor");
    f.check("y", y, on_maze(x, y), "0, or +-1 at the junction");
    f.check("t", t, t >= x && t <= spec_.max_steps, "between x and corridor + 1");
    f.check("over", over, over == (t == spec_.max_steps), "true exactly at the last step");
    f.finish();
    EpisodeRng r;
    r.load(rng);
    rng_ = r, goal_ = goal, x_ = x, y_ = y, t_ = t, over_ = over;
  }

 private:
  bool on_maze(int64_t x, int64_t y) const {
    return (y == 0 && x >= 0 && x <= corridor_) || (x == corridor_ && (y == 1 || y == -1));
  }

  void observe(float* obs) const {
    obs[0] = x_ == corridor_ ? 1.f : 0.f;
    obs[1] = x_ == corridor_ ? float(y_) : (x_ == 0 && t_ == 0) ? float(goal_) : 0.f;
  }

  int64_t corridor_;
  EnvSpec spec_;
  EpisodeRng rng_;
  int64_t goal_ = 1, x_ = 0, y_ = 0, t_ = 0;
  bool over_ = true;
};

const EnvRegistration kRegistered("tmaze_passive", [](const nlohmann::json& config) {
  JsonFields f(config, "the tmaze_passive environment");
  int64_t corridor = 10;
  f.get("corridor", corridor);
  f.check("corridor", corridor, corridor >= 1 && corridor <= 1000000, "between 1 and 10^6");
  f.finish();
  return std::make_unique<TMazePassive>(corridor);
});

}  // namespace
}  // namespace rill::rl
