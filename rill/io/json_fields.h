// Strict reading of a JSON config object: optional typed fields, a clear error for a value of
// the wrong type, and finish() refuses any key that nobody read (a typo is never ignored).
#pragma once
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "rill/core/error.h"

namespace rill {

class JsonFields {
 public:
  // where names the object in errors, e.g. "the model config" or "mixer \"linear_attention\"".
  JsonFields(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    RILL_CHECK(j.is_object(), "[config] {} must be a JSON object, got {}", where_, j.dump());
  }

  template <class T>
  void get(const char* key, T& out) {
    seen_.insert(key);
    if (!j_.contains(key)) return;
    try {
      out = j_.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      fail("[config] {}: \"{}\" has the wrong type: {}", where_, key, j_.at(key).dump());
    }
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

 private:
  const nlohmann::json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

}  // namespace rill
