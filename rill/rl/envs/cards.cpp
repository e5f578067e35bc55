// Decks of cards for POPGym's card environments (see cards.h).
#include "rill/rl/envs/cards.h"

#include <utility>

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

}  // namespace rill::rl::cards
