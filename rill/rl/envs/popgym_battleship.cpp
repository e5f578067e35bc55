// POPGym's Battleship (Morad et al. 2023, proroklab/popgym popgym/envs/battleship.py), type
// "popgym_battleship", config "difficulty": easy, medium, hard = boards of 8x8, 10x10, 12x12
// (relit.md section 4).
//
// Ships of 2, 3, 3 and 4 tiles lie hidden on a b x b board, each horizontal or vertical, placed
// in that order at random (a uniform start tile, axis and direction, redrawn until the ship is
// on the board and overlaps none placed before; ships may touch). Each step the agent fires at
// a tile: a hit is a ship tile not fired at before (+1/12), anything else is a miss
// (-1/(b^2 - 12)). The episode ends when all 12 ship tiles are hit (terminated, a success) or
// after b^2 steps (truncated). Sinking everything without a miss returns 1; firing at every
// tile once returns 1 - (misses before the last hit)/(b^2 - 12) >= 0.
//   observation (1 + 2b floats): [0] 1 for a hit, 0 for a miss; [1 .. b] the one-hot row and
//     [b+1 .. 2b] the one-hot column of the tile just fired at; zeros at reset.
//   actions: b^2, the tile row * b + column (POPGym's MultiDiscrete([b, b]) flattened).
// Optimal return 1 (the oracle fires at the ship tiles); the best memoryless return has no
// closed form (NaN).
#include <algorithm>
#include <array>

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/popgym.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl {
namespace {

constexpr std::array<int64_t, 4> kShips = {2, 3, 3, 4};
constexpr int64_t kShipTiles = 12;

class Battleship : public Env {
 public:
  Battleship(int64_t level, int64_t board) : b_(board), tiles_(board * board) {
    spec_.name = fmt::format("popgym_battleship {} board {}", popgym_difficulty_name(level), b_);
    spec_.obs_dim = 1 + 2 * b_;
    spec_.actions = tiles_;
    spec_.max_steps = tiles_;
    spec_.optimal_return = 1.0;
    spec_.has_success = true;
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    rng_ = {episode_key(seed, episode), 0};
    ships_.assign(size_t(tiles_), 0);
    for (int64_t size : kShips) place(size);
    fired_.assign(size_t(tiles_), 0);
    hits_ = 0, steps_ = 0;
    over_ = false;
    std::fill(obs, obs + spec_.obs_dim, 0.f);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(!over_, "[env] popgym_battleship: step after the episode ended (reset first)");
    RILL_CHECK(action >= 0 && action < tiles_,
               "[env] popgym_battleship: action {} is not in 0 .. {} (row * {} + column)", action,
               tiles_ - 1, b_);
    const bool hit = ships_[size_t(action)] && !fired_[size_t(action)];
    fired_[size_t(action)] = 1;
    hits_ += hit;
    ++steps_;
    StepResult r;
    r.reward = hit ? 1.0 / double(kShipTiles) : -1.0 / double(tiles_ - kShipTiles);
    r.terminated = hits_ == kShipTiles;
    r.truncated = !r.terminated && steps_ >= tiles_;
    r.success = r.terminated;
    over_ = r.done();
    std::fill(obs, obs + spec_.obs_dim, 0.f);
    obs[0] = hit ? 1.f : 0.f;
    obs[1 + action / b_] = 1.f;
    obs[1 + b_ + action % b_] = 1.f;
    return r;
  }

  // The first ship tile not yet hit, row by row.
  int64_t oracle_action() const override {
    for (int64_t i = 0; i < int64_t(ships_.size()); ++i)
      if (ships_[size_t(i)] && !fired_[size_t(i)]) return i;
    return 0;
  }

  nlohmann::json save() const override {
    return {{"rng", rng_.save()},
            {"ships", ships_},
            {"fired", fired_},
            {"steps", steps_},
            {"over", over_}};
  }

  void load(const nlohmann::json& j) override {
    const std::string what = "a saved popgym_battleship state";
    require_keys(j, {"rng", "ships", "fired", "steps", "over"}, what);
    JsonFields f(j, what);
    nlohmann::json rng;
    int64_t steps = 0;
    bool over = false;
    f.get("rng", rng);
    f.ignore("ships");
    f.ignore("fired");
    std::vector<int64_t> ships = read_int_array(j, "ships", tiles_, 0, 1, what);
    std::vector<int64_t> fired = read_int_array(j, "fired", tiles_, 0, 1, what);
    f.get("steps", steps);
    f.get("over", over);
    int64_t ship_tiles = 0, hits = 0, fired_tiles = 0;
    for (int64_t i = 0; i < tiles_; ++i) {
      ship_tiles += ships[size_t(i)];
      hits += ships[size_t(i)] && fired[size_t(i)];
      fired_tiles += fired[size_t(i)];
    }
    RILL_CHECK(ship_tiles == kShipTiles,
               "[env] {}: \"ships\" marks {} tiles; the ships (2, 3, 3, 4) cover 12", what,
               ship_tiles);
    f.check("steps", steps, steps >= fired_tiles && steps <= tiles_,
            "at least the tiles fired at and at most the board's tiles");
    f.check("over", over, over == (hits == kShipTiles || steps == tiles_),
            "true exactly when every ship tile is hit or the time is up");
    f.finish();
    EpisodeRng r;
    r.load(rng);
    rng_ = r, ships_ = std::move(ships), fired_ = std::move(fired);
    hits_ = hits, steps_ = steps, over_ = over;
  }

 private:
  // POPGym's place_ship: redraw (start row and column, axis, direction) until the ship lies on
  // the board over free tiles.
  void place(int64_t size) {
    for (;;) {
      const int64_t r0 = rng_.below(b_), c0 = rng_.below(b_);
      const int64_t axis = rng_.below(2), sign = rng_.below(2) ? -1 : 1;
      const int64_t r1 = axis == 0 ? r0 + sign * (size - 1) : r0;
      const int64_t c1 = axis == 1 ? c0 + sign * (size - 1) : c0;
      if (r1 < 0 || r1 >= b_ || c1 < 0 || c1 >= b_) continue;
      const int64_t ra = std::min(r0, r1), rb = std::max(r0, r1);
      const int64_t ca = std::min(c0, c1), cb = std::max(c0, c1);
      bool free = true;
      for (int64_t r = ra; r <= rb; ++r)
        for (int64_t c = ca; c <= cb; ++c) free = free && !ships_[size_t(r * b_ + c)];
      if (!free) continue;
      for (int64_t r = ra; r <= rb; ++r)
        for (int64_t c = ca; c <= cb; ++c) ships_[size_t(r * b_ + c)] = 1;
      return;
    }
  }

  int64_t b_, tiles_;
  EnvSpec spec_;
  EpisodeRng rng_;
  std::vector<int64_t> ships_, fired_;  // per tile, row * b + column: 1 ship / fired at
  int64_t hits_ = 0, steps_ = 0;
  bool over_ = true;
};

const EnvRegistration kRegistered("popgym_battleship", [](const nlohmann::json& config) {
  const int64_t level = read_popgym_difficulty(config, "popgym_battleship");
  static constexpr int64_t kBoard[3] = {8, 10, 12};
  return std::make_unique<Battleship>(level, kBoard[level]);
});

}  // namespace
}  // namespace rill::rl
