// Strict reading of saved environment states (see saved_state.h).
#include "rill/rl/envs/saved_state.h"

#include <limits>

#include "rill/core/error.h"

namespace rill::rl {

void require_keys(const nlohmann::json& state, std::initializer_list<const char*> keys,
                  const std::string& what) {
  RILL_CHECK(state.is_object(), "[env] {} must be a JSON object, got {}", what, state.dump());
  for (const char* key : keys)
    RILL_CHECK(state.contains(key), "[env] {} lacks the key \"{}\" (it needs all of {})", what, key,
               fmt::join(keys, ", "));
}

std::vector<int64_t> read_int_array(const nlohmann::json& state, const char* key, int64_t size,
                                    int64_t lo, int64_t hi, const std::string& what) {
  RILL_CHECK(state.contains(key), "[env] {} lacks the key \"{}\"", what, key);
  const nlohmann::json& a = state.at(key);
  RILL_CHECK(a.is_array() && int64_t(a.size()) == size,
             "[env] {}: \"{}\" must be an array of {} integers, got {}", what, key, size,
             a.is_array() ? fmt::format("an array of {}", a.size()) : a.dump());
  std::vector<int64_t> out;
  out.reserve(size_t(size));
  for (size_t i = 0; i < a.size(); ++i) {
    const nlohmann::json& v = a[i];
    // nlohmann keeps integers above INT64_MAX as unsigned: those are never in range here.
    const bool ok = v.is_number_integer() &&
                    (!v.is_number_unsigned() ||
                     v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max())) &&
                    v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    RILL_CHECK(ok, "[env] {}: \"{}\"[{}] is {}; it must be an integer in [{}, {}]", what, key, i,
               v.dump(), lo, hi);
    out.push_back(v.get<int64_t>());
  }
  return out;
}

std::vector<int64_t> read_permutation(const nlohmann::json& state, const char* key, int64_t size,
                                      const std::string& what) {
  std::vector<int64_t> p = read_int_array(state, key, size, 0, size - 1, what);
  std::vector<bool> seen(size_t(size), false);
  for (int64_t v : p) {
    RILL_CHECK(!seen[size_t(v)], "[env] {}: \"{}\" must be a permutation of 0 .. {}; {} repeats",
               what, key, size - 1, v);
    seen[size_t(v)] = true;
  }
  return p;
}

}  // namespace rill::rl
