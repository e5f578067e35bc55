// Strict reading of a saved environment state (Env::load): every key the state needs must be
// there (a state never falls back to a default), nothing else may be (JsonFields::finish), and
// arrays of integers are read element by element, so a float, a bool or a value out of range is
// refused with the key and the rule it breaks.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rill::rl {

// Refuses the state unless it is an object holding every one of keys; `what` names it in
// errors, e.g. "a saved memory_len state".
void require_keys(const nlohmann::json& state, std::initializer_list<const char*> keys,
                  const std::string& what);

// state[key] as `size` integers, each in [lo, hi].
std::vector<int64_t> read_int_array(const nlohmann::json& state, const char* key, int64_t size,
                                    int64_t lo, int64_t hi, const std::string& what);

// state[key] as a permutation of 0 .. size-1 (a shuffled deck).
std::vector<int64_t> read_permutation(const nlohmann::json& state, const char* key, int64_t size,
                                      const std::string& what);

}  // namespace rill::rl
