// POPGym's RepeatFirst (Morad et al. 2023, proroklab/popgym popgym/envs/repeat_first.py), type
// "popgym_repeat_first", config "difficulty": easy, medium, hard = 1, 8, 16 decks (relit.md
// section 4).
//
// The cards of a shuffled deck of n = 52 * decks cards are dealt one a step; the first is dealt
// at reset. At every step the agent must name the suit of the first card: +1/(n-1) when right,
// -1/(n-1) otherwise. The episode lasts exactly n - 1 steps (return in [-1, 1]).
//   observation (4 floats): the one-hot suit of the card just dealt (POPGym's Discrete(4)).
//   actions: a suit, 0 .. 3 (spades, diamonds, clubs, hearts: cards.h).
// Optimal return 1. The best memoryless policy names the suit it sees: right at the first step,
// then right with probability q = (n/4 - 1)/(n - 1) (the first card is no longer in the deck),
// so 1/(n-1) + (n-2)(2q - 1)/(n-1) (about -0.5; naming another suit is 2/(n-1)^2 worse).
#include <algorithm>

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/cards.h"
#include "rill/rl/envs/popgym.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl {
namespace {

class RepeatFirst : public Env {
 public:
  RepeatFirst(int64_t level, int64_t decks)
      : decks_(decks), n_(cards::kDeckSize * decks), dealt_(n_) {
    spec_.name =
        fmt::format("popgym_repeat_first {} decks {}", popgym_difficulty_name(level), decks);
    spec_.obs_dim = cards::kSuits;
    spec_.actions = cards::kSuits;
    spec_.max_steps = n_ - 1;
    spec_.optimal_return = 1.0;
    const double n = double(n_), q = (n / 4 - 1) / (n - 1);
    spec_.memoryless_return = (1 + (n - 2) * (2 * q - 1)) / (n - 1);
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    rng_ = {episode_key(seed, episode), 0};
    order_ = cards::shuffled(decks_, rng_);
    dealt_ = 1;
    observe(obs);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(dealt_ < n_,
               "[env] popgym_repeat_first: step after the episode ended (reset "
               "first)");
    RILL_CHECK(action >= 0 && action < cards::kSuits,
               "[env] popgym_repeat_first: action {} is not in 0 .. 3", action);
    StepResult r;
    const double scale = 1.0 / double(n_ - 1);
    r.reward = action == cards::suit(order_[0]) ? scale : -scale;
    r.terminated = n_ - dealt_ == 1;  // the last card is dealt now
    ++dealt_;
    observe(obs);
    return r;
  }

  int64_t oracle_action() const override {
    return order_.empty() ? 0 : cards::suit(order_[0]);  // 0 before the first reset
  }

  nlohmann::json save() const override {
    return {{"rng", rng_.save()}, {"order", order_}, {"dealt", dealt_}};
  }

  void load(const nlohmann::json& j) override {
    const std::string what = "a saved popgym_repeat_first state";
    require_keys(j, {"rng", "order", "dealt"}, what);
    JsonFields f(j, what);
    nlohmann::json rng;
    int64_t dealt = 0;
    f.get("rng", rng);
    f.ignore("order");
    std::vector<int64_t> order = read_permutation(j, "order", n_, what);
    f.get("dealt", dealt);
    f.check("dealt", dealt, dealt >= 1 && dealt <= n_, "a number of cards dealt, 1 .. n");
    f.finish();
    EpisodeRng r;
    r.load(rng);
    rng_ = r, order_ = std::move(order), dealt_ = dealt;
  }

 private:
  void observe(float* obs) const {
    std::fill(obs, obs + cards::kSuits, 0.f);
    obs[cards::suit(order_[size_t(dealt_ - 1)])] = 1.f;
  }

  int64_t decks_, n_;
  EnvSpec spec_;
  EpisodeRng rng_;
  std::vector<int64_t> order_;  // the deal order of the whole deck
  int64_t dealt_;  // cards dealt so far, the first at reset; n_ when over (and before reset)
};

const EnvRegistration kRegistered("popgym_repeat_first", [](const nlohmann::json& config) {
  JsonFields f(config, "the popgym_repeat_first environment");
  std::string type;
  f.get("type", type);
  const int64_t level = read_popgym_difficulty(f);
  f.finish();
  static constexpr int64_t kDecks[3] = {1, 8, 16};
  return std::make_unique<RepeatFirst>(level, kDecks[level]);
});

}  // namespace
}  // namespace rill::rl
