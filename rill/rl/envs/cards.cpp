// Decks of cards for POPGym's card environments (see cards.h).
#include "rill/rl/envs/cards.h"

#include <algorithm>
#include <utility>

#include "rill/io/json_fields.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl::cards {

int64_t field_values(Field f) {
  return f == Field::colors ? kColors : f == Field::suits ? kSuits : kRanks;
}

int64_t field_of(Field f, int64_t card) {
  return f == Field::colors ? color(card) : f == Field::suits ? suit(card) : rank(card);
}

const char* field_name(Field f) {
  return f == Field::colors ? "colors" : f == Field::suits ? "suits" : "ranks";
}

std::vector<int64_t> shuffled(int64_t decks, EpisodeRng& rng) {
  const int64_t n = kDeckSize * decks;
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(rng.below(i + 1))]);
  return order;
}

void Deal::start(uint64_t seed, uint64_t episode) {
  rng = {episode_key(seed, episode), 0};
  order = shuffled(decks, rng);
  dealt = 1;
}

void Deal::show_suit(float* obs) const {
  std::fill(obs, obs + kSuits, 0.f);
  obs[suit(card(dealt - 1))] = 1.f;
}

nlohmann::json Deal::save() const {
  return {{"rng", rng.save()}, {"order", order}, {"dealt", dealt}};
}

void Deal::load(const nlohmann::json& j, const std::string& what) {
  require_keys(j, {"rng", "order", "dealt"}, what);
  JsonFields f(j, what);
  nlohmann::json saved_rng;
  int64_t saved_dealt = 0;
  f.get("rng", saved_rng);
  f.ignore("order");
  std::vector<int64_t> saved_order = read_permutation(j, "order", size(), what);
  f.get("dealt", saved_dealt);
  f.check("dealt", saved_dealt, saved_dealt >= 1 && saved_dealt <= size(),
          "a number of cards dealt, 1 .. n");
  f.finish();
  EpisodeRng r;
  r.load(saved_rng);
  rng = r, order = std::move(saved_order), dealt = saved_dealt;
}

}  // namespace rill::rl::cards
