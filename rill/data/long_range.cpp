// The long-range recall corpus generator (see long_range.h): names defined in a document's header
// and referred to 1-8 KB later inside Markov filler, from one explicit PRNG stream.
#include "rill/data/long_range.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "rill/core/error.h"

namespace rill::data {

namespace {

// splitmix64: a fixed, documented sequence, unlike std:: distributions, whose output may differ
// between standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BEB133111Full;
    return z ^ (z >> 31);
  }
  // In [0, n), n > 0: the high 64 bits of next() * n (bias below 2^-50 for the n used here).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  int64_t between(int64_t lo, int64_t hi) {  // in [lo, hi]
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1)));
  }

 private:
  uint64_t state_;
};

// Made-up lowercase words of 1-3 syllables (consonant, vowel, sometimes a closing consonant),
// all distinct.
std::vector<std::string> make_vocabulary(SplitMix64& rng, int size) {
  constexpr std::string_view kConsonants = "bcdfghjklmnprstvwz";
  constexpr std::string_view kVowels = "aeiou";
  std::vector<std::string> words;
  while (static_cast<int>(words.size()) < size) {
    std::string w;
    const int syllables = static_cast<int>(rng.between(1, 3));
    for (int s = 0; s < syllables; ++s) {
      w += kConsonants[rng.below(kConsonants.size())];
      w += kVowels[rng.below(kVowels.size())];
      if (rng.below(4) == 0) w += kConsonants[rng.below(kConsonants.size())];
    }
    if (std::find(words.begin(), words.end(), w) == words.end()) words.push_back(std::move(w));
  }
  return words;
}

// The sparse order-1 transition table: each word has 3-6 successors with integer weights 1-8.
struct Transitions {
  std::vector<std::vector<int>> next;
  std::vector<std::vector<int>> cumulative;  // running sums of the weights
  int sample(SplitMix64& rng, int word) const {
    const std::vector<int>& c = cumulative[word];
    const int r = static_cast<int>(rng.below(static_cast<uint64_t>(c.back())));
    const size_t k = std::upper_bound(c.begin(), c.end(), r) - c.begin();
    return next[word][k];
  }
};

Transitions make_transitions(SplitMix64& rng, int vocabulary) {
  Transitions t;
  t.next.resize(vocabulary);
  t.cumulative.resize(vocabulary);
  for (int w = 0; w < vocabulary; ++w) {
    const int n = static_cast<int>(rng.between(3, 6));
    int sum = 0;
    for (int k = 0; k < n; ++k) {
      t.next[w].push_back(static_cast<int>(rng.below(static_cast<uint64_t>(vocabulary))));
      sum += static_cast<int>(rng.between(1, 8));
      t.cumulative[w].push_back(sum);
    }
  }
  return t;
}

void check_options(const LongRangeOptions& o) {
  RILL_CHECK(o.documents > 0, "[data] long-range: documents must be positive, not {}", o.documents);
  RILL_CHECK(o.names > 0 && o.names <= 26,
             "[data] long-range: {} names cannot have distinct first letters A-Z", o.names);
  RILL_CHECK(o.name_length > 0, "[data] long-range: name_length must be positive");
  RILL_CHECK(o.vocabulary >= 2 && o.vocabulary <= 5000,
             "[data] long-range: the vocabulary must hold 2 to 5000 words, not {}", o.vocabulary);
  RILL_CHECK(o.min_refs >= 0 && o.max_refs >= o.min_refs,
             "[data] long-range: bad reference count range [{}, {}]", o.min_refs, o.max_refs);
  RILL_CHECK(o.min_distance >= 0 && o.max_distance >= o.min_distance,
             "[data] long-range: bad distance range [{}, {}]", o.min_distance, o.max_distance);
  // Room for max_refs references kMinGap apart, with margin, so that drawing them terminates.
  RILL_CHECK((o.max_distance - o.min_distance + 1) >= 4 * kMinGap * int64_t(o.max_refs),
             "[data] long-range: the distance range [{}, {}] is too narrow for {} references "
             "{} bytes apart",
             o.min_distance, o.max_distance, o.max_refs, kMinGap);
  RILL_CHECK(o.min_body <= o.max_body && o.min_body > o.max_distance + o.name_length + 1,
             "[data] long-range: the filler length range [{}, {}] must lie past the last "
             "reference (distance {} + '@' + {} letters)",
             o.min_body, o.max_body, o.max_distance, o.name_length);
}

}  // namespace

std::string generate_long_range(const LongRangeOptions& o) {
  check_options(o);
  SplitMix64 rng(o.seed);
  const std::vector<std::string> vocab = make_vocabulary(rng, o.vocabulary);
  const Transitions table = make_transitions(rng, o.vocabulary);

  std::string text;
  text.reserve(static_cast<size_t>(o.documents) * static_cast<size_t>(o.max_body + 200));
  int word = static_cast<int>(rng.below(static_cast<uint64_t>(o.vocabulary)));
  std::string unit;  // the next word with its separator, drawn but not yet written
  auto draw_unit = [&] {
    unit = vocab[word];
    if (rng.below(12) == 0)
      unit += rng.below(3) == 0 ? ".\n" : ". ";
    else
      unit += ' ';
    word = table.sample(rng, word);
  };
  draw_unit();

  for (int64_t d = 0; d < o.documents; ++d) {
    text += "=== document ===\n";
    // Distinct first letters: a partial Fisher-Yates shuffle of A-Z.
    char letters[26];
    for (int i = 0; i < 26; ++i) letters[i] = static_cast<char>('A' + i);
    std::vector<std::string> names;
    for (int k = 0; k < o.names; ++k) {
      std::swap(letters[k], letters[k + rng.below(static_cast<uint64_t>(26 - k))]);
      std::string name(1, letters[k]);
      for (int i = 1; i < o.name_length; ++i) name += static_cast<char>('A' + rng.below(26));
      text += "define " + name + "\n";
      names.push_back(std::move(name));
    }
    const size_t header_end = text.size();

    const int refs = static_cast<int>(rng.between(o.min_refs, o.max_refs));
    std::vector<int64_t> at;
    while (static_cast<int>(at.size()) < refs) {
      const int64_t x = rng.between(o.min_distance, o.max_distance);
      bool clear = true;
      for (int64_t y : at) clear = clear && (x > y ? x - y : y - x) >= kMinGap;
      if (clear) at.push_back(x);
    }
    std::sort(at.begin(), at.end());

    const int64_t body = rng.between(o.min_body, o.max_body);
    auto offset = [&] { return static_cast<int64_t>(text.size() - header_end); };
    size_t next_ref = 0;
    while (next_ref < at.size() || offset() < body) {
      if (next_ref < at.size() && offset() + static_cast<int64_t>(unit.size()) > at[next_ref]) {
        text.append(static_cast<size_t>(at[next_ref] - offset()), ' ');
        text += '@';
        text += names[rng.below(names.size())];
        text += ' ';
        ++next_ref;
        continue;
      }
      text += unit;
      draw_unit();
    }
    if (text.back() == ' ') text.back() = '\n';
  }
  return text;
}

std::string generate_long_range_corpus() { return generate_long_range(LongRangeOptions{}); }

}  // namespace rill::data
