// Decks of playing cards as POPGym deals them (popgym/core/deck.py), for its card
// environments. A deck of `decks` standard decks holds 52 * decks cards numbered 0 .. n-1;
// card c has rank (c mod 52) / 4 (0 ace .. 12 king), suit c mod 4 (0 spades, 1 diamonds,
// 2 clubs, 3 hearts) and colour c mod 2 (0 black, 1 red), POPGym's layout. An episode deals the
// cards of a uniformly shuffled deck one after another.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rill/rl/env.h"

namespace rill::rl::cards {

constexpr int64_t kDeckSize = 52, kSuits = 4, kRanks = 13, kColors = 2;

inline int64_t suit(int64_t card) { return card % kSuits; }
inline int64_t rank(int64_t card) { return (card % kDeckSize) / kSuits; }
inline int64_t color(int64_t card) { return card % kColors; }

// What a card environment counts or asks about: one of the three fields of a card.
enum class Field { colors, suits, ranks };
int64_t field_values(Field f);            // 2, 4 or 13
int64_t field_of(Field f, int64_t card);  // the card's colour, suit or rank
const char* field_name(Field f);          // "colors", "suits" or "ranks"

// The order in which an episode deals the cards of `decks` decks: a uniform permutation of
// 0 .. 52*decks-1 (Fisher-Yates, from the episode's random source).
std::vector<int64_t> shuffled(int64_t decks, EpisodeRng& rng);

// One shuffled deck dealt a card a step, the first at reset: the whole state of an environment
// that only deals and asks (RepeatFirst, RepeatPrevious). dealt == the deck's size means the
// episode is over (and, as constructed, not yet started).
struct Deal {
  explicit Deal(int64_t decks) : decks(decks), dealt(kDeckSize * decks) {}
  int64_t decks;
  EpisodeRng rng;
  std::vector<int64_t> order;  // the deal order of the whole deck
  int64_t dealt;               // cards dealt so far

  int64_t size() const { return kDeckSize * decks; }
  void start(uint64_t seed, uint64_t episode);                // shuffles and deals the first card
  int64_t card(int64_t i) const { return order[size_t(i)]; }  // the i-th card dealt (0-based)
  void show_suit(float* obs) const;  // obs [4]: the one-hot suit of the card just dealt
  nlohmann::json save() const;
  // Refuses a state without every key, with another, or with a bad value; `what` names it.
  void load(const nlohmann::json& state, const std::string& what);
};

}  // namespace rill::rl::cards
