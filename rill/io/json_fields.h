// Strict reading of a JSON config object: optional typed fields, a clear error for a value of
// the wrong type (a float or a bool never slips into an integer, 1e30 never wraps), range
// checks that name the field, and finish() refuses any key that nobody read (a typo is never
// ignored).
#pragma once
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>

#include "rill/core/error.h"

namespace rill {

class JsonFields {
 public:
  // where names the object in errors, e.g. "the model config" or "mixer \"linear_attention\"".
  JsonFields(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    RILL_CHECK(j.is_object(), "[config] {} must be a JSON object, got {}", where_, j.dump());
  }

  // Reads key into out when present. Integers must be JSON integers within T's range; reals
  // accept any JSON number; bools and strings only their own kind.
  template <class T>
  void get(const char* key, T& out) {
    seen_.insert(key);
    if (!j_.contains(key)) return;
    const nlohmann::json& v = j_.at(key);
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) wrong_type(key, "true or false");
      out = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) wrong_type(key, "an integer");
      // nlohmann keeps integers above INT64_MAX as unsigned: compare in the matching type.
      const bool fits =
          v.is_number_unsigned()
              ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
              : (v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                 (std::is_unsigned_v<T> ||
                  v.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max())));
      if (!fits) wrong_type(key, "an integer in range");
      out = v.get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) wrong_type(key, "a number");
      out = v.get<T>();
      if (!std::isfinite(out)) wrong_type(key, "a finite number");
    } else {
      try {
        out = v.get<T>();
      } catch (const nlohmann::json::exception&) {
        wrong_type(key, "a value of another type");
      }
    }
  }

  // Refuses the field's value unless ok, saying the rule it breaks:
  //   [config] the training config: "beta1" is 1.5; it must be in [0, 1)
  template <class T>
  void check(const char* key, const T& value, bool ok, const char* rule) const {
    RILL_CHECK(ok, "[config] {}: \"{}\" is {}; it must be {}", where_, key, value, rule);
  }

  // The raw value (nullptr when absent), for fields with a structure of their own.
  const nlohmann::json* raw(const char* key) {
    seen_.insert(key);
    return j_.contains(key) ? &j_.at(key) : nullptr;
  }

  void ignore(const char* key) { seen_.insert(key); }

  void finish() const {
    for (const auto& [k, v] : j_.items())
      RILL_CHECK(seen_.count(k), "[config] {}: unknown key \"{}\"", where_, k);
  }

  const std::string& where() const { return where_; }

 private:
  [[noreturn]] void wrong_type(const char* key, const char* want) const {
    fail("[config] {}: \"{}\" must be {}, got {}", where_, key, want, j_.at(key).dump());
  }

  const nlohmann::json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

}  // namespace rill
