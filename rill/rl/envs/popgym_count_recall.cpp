// POPGym's CountRecall (Morad et al. 2023, proroklab/popgym popgym/envs/count_recall.py, with
// the action space of its fix #41: counts 0 .. n/v), type "popgym_count_recall", config
// "difficulty": easy, medium, hard = (1 deck, colours), (2 decks, suits), (4 decks, ranks)
// (relit.md section 4).
//
// Two decks of n = 52 * decks cards are shuffled independently: a value deck and a query deck.
// Each step deals one card of each (the first pair at reset); a card counts by its field (its
// colour, suit or rank: v = 2, 4 or 13 values). At every step the agent must say how many value
// cards dealt so far (the one on show included) have the field value of the query card on show:
// +1/(n-1) when right, -1/(n-1) otherwise. The episode lasts exactly n - 1 steps (return in
// [-1, 1]).
//   observation (2v floats): [0 .. v-1] the one-hot field value of the value card just dealt,
//     [v .. 2v-1] that of the query card (POPGym's MultiDiscrete([v, v])).
//   actions: a count, 0 .. n/v (27, 27, 17 actions).
// Optimal return 1; the best memoryless return has no closed form here (NaN).
#include <algorithm>

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/cards.h"
#include "rill/rl/envs/popgym.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl {
namespace {

class CountRecall : public Env {
 public:
  CountRecall(int64_t level, int64_t decks, cards::Field field)
      : decks_(decks),
        n_(cards::kDeckSize * decks),
        field_(field),
        values_(cards::field_values(field)),
        dealt_(n_) {
    spec_.name = fmt::format("popgym_count_recall {} decks {} {}", popgym_difficulty_name(level),
                             decks, cards::field_name(field));
    spec_.obs_dim = 2 * values_;
    spec_.actions = n_ / values_ + 1;
    spec_.max_steps = n_ - 1;
    spec_.optimal_return = 1.0;
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    rng_ = {episode_key(seed, episode), 0};
    value_order_ = cards::shuffled(decks_, rng_);
    query_order_ = cards::shuffled(decks_, rng_);
    dealt_ = 1;
    recount();
    observe(obs);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(dealt_ < n_,
               "[env] popgym_count_recall: step after the episode ended (reset "
               "first)");
    RILL_CHECK(action >= 0 && action < spec_.actions,
               "[env] popgym_count_recall: action {} is not in 0 .. {}", action, spec_.actions - 1);
    StepResult r;
    const double scale = 1.0 / double(n_ - 1);
    r.reward = action == oracle_action() ? scale : -scale;
    ++dealt_;
    counts_[size_t(cards::field_of(field_, value_order_[size_t(dealt_ - 1)]))] += 1;
    r.terminated = dealt_ == n_;
    observe(obs);
    return r;
  }

  int64_t oracle_action() const override {
    if (counts_.empty()) return 0;  // before the first reset
    return counts_[size_t(cards::field_of(field_, query_order_[size_t(dealt_ - 1)]))];
  }

  nlohmann::json save() const override {
    return {{"rng", rng_.save()},
            {"value_order", value_order_},
            {"query_order", query_order_},
            {"dealt", dealt_}};
  }

  void load(const nlohmann::json& j) override {
    const std::string what = "a saved popgym_count_recall state";
    require_keys(j, {"rng", "value_order", "query_order", "dealt"}, what);
    JsonFields f(j, what);
    nlohmann::json rng;
    int64_t dealt = 0;
    f.get("rng", rng);
    f.ignore("value_order");
    f.ignore("query_order");
    std::vector<int64_t> value_order = read_permutation(j, "value_order", n_, what);
    std::vector<int64_t> query_order = read_permutation(j, "query_order", n_, what);
    f.get("dealt", dealt);
    f.check("dealt", dealt, dealt >= 1 && dealt <= n_, "a number of cards dealt, 1 .. n");
    f.finish();
    EpisodeRng r;
    r.load(rng);
    rng_ = r, value_order_ = std::move(value_order), query_order_ = std::move(query_order);
    dealt_ = dealt;
    recount();
  }

 private:
  void recount() {
    counts_.assign(size_t(values_), 0);
    for (int64_t i = 0; i < dealt_; ++i)
      counts_[size_t(cards::field_of(field_, value_order_[size_t(i)]))] += 1;
  }

  void observe(float* obs) const {
    std::fill(obs, obs + 2 * values_, 0.f);
    obs[cards::field_of(field_, value_order_[size_t(dealt_ - 1)])] = 1.f;
    obs[values_ + cards::field_of(field_, query_order_[size_t(dealt_ - 1)])] = 1.f;
  }

  int64_t decks_, n_;
  cards::Field field_;
  int64_t values_;
  EnvSpec spec_;
  EpisodeRng rng_;
  std::vector<int64_t> value_order_, query_order_;
  int64_t dealt_;                // pairs dealt, the first at reset; n_ when over (or unset)
  std::vector<int64_t> counts_;  // value cards dealt so far, by field value (derived)
};

const EnvRegistration kRegistered("popgym_count_recall", [](const nlohmann::json& config) {
  const int64_t level = read_popgym_difficulty(config, "popgym_count_recall");
  static constexpr int64_t kDecks[3] = {1, 2, 4};
  static constexpr cards::Field kField[3] = {cards::Field::colors, cards::Field::suits,
                                             cards::Field::ranks};
  return std::make_unique<CountRecall>(level, kDecks[level], kField[level]);
});

}  // namespace
}  // namespace rill::rl
