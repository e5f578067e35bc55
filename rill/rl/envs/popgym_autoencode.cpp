// POPGym's Autoencode (Morad et al. 2023, proroklab/popgym popgym/envs/autoencode.py), type
// "popgym_autoencode", config "difficulty": easy, medium, hard = 1, 2, 3 decks (relit.md
// section 4).
//
// Watch, then play. The cards of a shuffled deck of n = 52 * decks cards are dealt one a step
// (the first at reset) while the agent watches (n - 1 steps, no reward, actions ignored); then
// it must name their suits in reverse order, one a step (n steps): +1/n for each right suit,
// -1/n for each wrong one. The episode lasts exactly 2n - 1 steps (return in [-1, 1]).
//   observation (5 floats): [0] 1 while watching, 0 once playing (POPGym's mode flag: the
//     observation of the last card dealt already shows 0, the first suit to name is that card's);
//     [1-4] the one-hot suit of the card just dealt; while playing, the one-hot suit 0, as
//     POPGym shows the suit of card index 0 then.
//   actions: a suit, 0 .. 3.
// Optimal return 1. The best memoryless policy names the suit it sees when playing: the first
// answer is always right, and the other n - 1 are right when the card is a spade (n/4 - 1/4
// expected), so (3 - n)/(2n).
#include <algorithm>

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/cards.h"
#include "rill/rl/envs/popgym.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl {
namespace {

constexpr int64_t kObs = 1 + cards::kSuits;

class Autoencode : public Env {
 public:
  Autoencode(int64_t level, int64_t decks)
      : decks_(decks), n_(cards::kDeckSize * decks), dealt_(n_), played_(n_) {
    spec_.name = fmt::format("popgym_autoencode {} decks {}", popgym_difficulty_name(level), decks);
    spec_.obs_dim = kObs;
    spec_.actions = cards::kSuits;
    spec_.max_steps = 2 * n_ - 1;
    spec_.optimal_return = 1.0;
    spec_.memoryless_return = double(3 - n_) / double(2 * n_);
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    rng_ = {episode_key(seed, episode), 0};
    order_ = cards::shuffled(decks_, rng_);
    dealt_ = 1, played_ = 0;
    observe(obs);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(played_ < n_,
               "[env] popgym_autoencode: step after the episode ended (reset "
               "first)");
    RILL_CHECK(action >= 0 && action < cards::kSuits,
               "[env] popgym_autoencode: action {} is not in 0 .. 3", action);
    StepResult r;
    if (dealt_ < n_) {
      ++dealt_;  // watching: deal the next card
    } else {
      const double scale = 1.0 / double(n_);
      r.reward = action == oracle_action() ? scale : -scale;
      r.terminated = played_ == n_ - 1;
      ++played_;
    }
    observe(obs);
    return r;
  }

  // While watching any action will do (0); then the suit of the last card not yet named (0
  // before the first reset and after the end).
  int64_t oracle_action() const override {
    if (dealt_ < n_ || played_ >= n_) return 0;
    return cards::suit(order_[size_t(n_ - 1 - played_)]);
  }

  nlohmann::json save() const override {
    return {{"rng", rng_.save()}, {"order", order_}, {"dealt", dealt_}, {"played", played_}};
  }

  void load(const nlohmann::json& j) override {
    const std::string what = "a saved popgym_autoencode state";
    require_keys(j, {"rng", "order", "dealt", "played"}, what);
    JsonFields f(j, what);
    nlohmann::json rng;
    int64_t dealt = 0, played = 0;
    f.get("rng", rng);
    f.ignore("order");
    std::vector<int64_t> order = read_permutation(j, "order", n_, what);
    f.get("dealt", dealt);
    f.get("played", played);
    f.check("dealt", dealt, dealt >= 1 && dealt <= n_, "a number of cards dealt, 1 .. n");
    f.check("played", played, played >= 0 && played <= n_ && (played == 0 || dealt == n_),
            "a number of suits named, 0 .. n, and 0 until every card is dealt");
    f.finish();
    EpisodeRng r;
    r.load(rng);
    rng_ = r, order_ = std::move(order), dealt_ = dealt, played_ = played;
  }

 private:
  void observe(float* obs) const {
    std::fill(obs, obs + kObs, 0.f);
    const bool watching = dealt_ < n_;
    obs[0] = watching ? 1.f : 0.f;
    // The card just dealt; while playing (after the step that dealt the last card), suit 0.
    const bool fresh = watching || played_ == 0;
    obs[1 + (fresh ? cards::suit(order_[size_t(dealt_ - 1)]) : 0)] = 1.f;
  }

  int64_t decks_, n_;
  EnvSpec spec_;
  EpisodeRng rng_;
  std::vector<int64_t> order_;
  int64_t dealt_, played_;  // cards dealt (1 .. n) and suits named (0 .. n; n when over)
};

const EnvRegistration kRegistered("popgym_autoencode", [](const nlohmann::json& config) {
  const int64_t level = read_popgym_difficulty(config, "popgym_autoencode");
  static constexpr int64_t kDecks[3] = {1, 2, 3};
  return std::make_unique<Autoencode>(level, kDecks[level]);
});

}  // namespace
}  // namespace rill::rl
