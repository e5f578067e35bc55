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

#include "rill/core/error.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/cards.h"
#include "rill/rl/envs/popgym.h"

namespace rill::rl {
namespace {

class RepeatFirst : public Env {
 public:
  RepeatFirst(int64_t level, int64_t decks) : deal_(decks) {
    spec_.name =
        fmt::format("popgym_repeat_first {} decks {}", popgym_difficulty_name(level), decks);
    spec_.obs_dim = cards::kSuits;
    spec_.actions = cards::kSuits;
    spec_.max_steps = deal_.size() - 1;
    spec_.optimal_return = 1.0;
    const double n = double(deal_.size()), q = (n / 4 - 1) / (n - 1);
    spec_.memoryless_return = (1 + (n - 2) * (2 * q - 1)) / (n - 1);
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    deal_.start(seed, episode);
    deal_.show_suit(obs);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(deal_.dealt < deal_.size(),
               "[env] popgym_repeat_first: step after the episode ended (reset "
               "first)");
    RILL_CHECK(action >= 0 && action < cards::kSuits,
               "[env] popgym_repeat_first: action {} is not in 0 .. 3", action);
    StepResult r;
    const double scale = 1.0 / double(deal_.size() - 1);
    r.reward = action == cards::suit(deal_.card(0)) ? scale : -scale;
    r.terminated = deal_.size() - deal_.dealt == 1;  // the last card is dealt now
    ++deal_.dealt;
    deal_.show_suit(obs);
    return r;
  }

  int64_t oracle_action() const override {
    return deal_.order.empty() ? 0 : cards::suit(deal_.card(0));  // 0 before the first reset
  }

  nlohmann::json save() const override { return deal_.save(); }

  void load(const nlohmann::json& j) override {
    deal_.load(j, "a saved popgym_repeat_first state");
  }

 private:
  EnvSpec spec_;
  cards::Deal deal_;  // the deck; dealt == its size when over (and before reset)
};

const EnvRegistration kRegistered("popgym_repeat_first", [](const nlohmann::json& config) {
  const int64_t level = read_popgym_difficulty(config, "popgym_repeat_first");
  static constexpr int64_t kDecks[3] = {1, 8, 16};
  return std::make_unique<RepeatFirst>(level, kDecks[level]);
});

}  // namespace
}  // namespace rill::rl
