// POPGym's RepeatPrevious (Morad et al. 2023, proroklab/popgym
// popgym/envs/repeat_previous.py), type "popgym_repeat_previous", config "difficulty": easy,
// medium, hard = (1 deck, k 4), (2 decks, k 32), (3 decks, k 64) (relit.md section 4).
//
// The cards of a shuffled deck of n = 52 * decks cards are dealt one a step; the first is dealt
// at reset. At step j = 1 .. n-1 (when j cards have been dealt, the last one on show) the agent
// must name the suit of card j - k + 1 (the card shown k - 1 steps ago, POPGym's hand[-k]) once
// j >= k: +1/(n-k) when right, -1/(n-k) otherwise; steps before carry no reward. The episode
// lasts exactly n - 1 steps (return in [-1, 1]).
//   observation (4 floats): the one-hot suit of the card just dealt (POPGym's Discrete(4)).
//   actions: a suit, 0 .. 3.
// Optimal return 1. The best memoryless policy names a suit other than the one it sees (the
// card asked about is another card of the deck): right with probability (n/4)/(n-1), so
// -(n-2)/(2(n-1)).

#include "rill/core/error.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/cards.h"
#include "rill/rl/envs/popgym.h"

namespace rill::rl {
namespace {

class RepeatPrevious : public Env {
 public:
  RepeatPrevious(int64_t level, int64_t decks, int64_t k) : k_(k), deal_(decks) {
    spec_.name = fmt::format("popgym_repeat_previous {} decks {} k {}",
                             popgym_difficulty_name(level), decks, k);
    spec_.obs_dim = cards::kSuits;
    spec_.actions = cards::kSuits;
    spec_.max_steps = deal_.size() - 1;
    spec_.optimal_return = 1.0;
    spec_.memoryless_return = -double(deal_.size() - 2) / (2.0 * double(deal_.size() - 1));
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    deal_.start(seed, episode);
    deal_.show_suit(obs);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(deal_.dealt < deal_.size(),
               "[env] popgym_repeat_previous: step after the episode ended (reset first)");
    RILL_CHECK(action >= 0 && action < cards::kSuits,
               "[env] popgym_repeat_previous: action {} is not in 0 .. 3", action);
    StepResult r;
    if (deal_.dealt >= k_) {
      const double scale = 1.0 / double(deal_.size() - k_);
      r.reward = action == cards::suit(deal_.card(deal_.dealt - k_)) ? scale : -scale;
    }
    r.terminated = deal_.size() - deal_.dealt == 1;
    ++deal_.dealt;
    deal_.show_suit(obs);
    return r;
  }

  int64_t oracle_action() const override {
    return deal_.dealt >= k_ && !deal_.order.empty() ? cards::suit(deal_.card(deal_.dealt - k_))
                                                     : 0;
  }

  nlohmann::json save() const override { return deal_.save(); }

  void load(const nlohmann::json& j) override {
    deal_.load(j, "a saved popgym_repeat_previous state");
  }

 private:
  int64_t k_;
  EnvSpec spec_;
  cards::Deal deal_;  // the deck; dealt == its size when over (and before reset)
};

const EnvRegistration kRegistered("popgym_repeat_previous", [](const nlohmann::json& config) {
  const int64_t level = read_popgym_difficulty(config, "popgym_repeat_previous");
  static constexpr int64_t kDecks[3] = {1, 2, 3}, kK[3] = {4, 32, 64};
  return std::make_unique<RepeatPrevious>(level, kDecks[level], kK[level]);
});

}  // namespace
}  // namespace rill::rl
