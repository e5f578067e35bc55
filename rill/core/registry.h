// A registry of named things (mixers, models, tasks) filled at static initialisation. Each user
// keeps one in a function-local static, so registrations from any translation unit find it
// constructed, and lookups name what is registered when a name is unknown.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <string>
#include <vector>

#include "rill/core/error.h"

namespace rill {

template <class V>
class Registry {
 public:
  explicit Registry(std::string what) : what_(std::move(what)) {}

  void add(const std::string& name, V value) {
    RILL_CHECK(!entries_.count(name), "[registry] {} \"{}\" is registered twice", what_, name);
    entries_.emplace(name, std::move(value));
  }
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  const V& get(const std::string& name) const {
    auto it = entries_.find(name);
    RILL_CHECK(it != entries_.end(), "[config] unknown {} \"{}\" (registered: {})", what_, name,
               fmt::join(names(), ", "));
    return it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, v] : entries_) out.push_back(name);
    return out;
  }
  const std::map<std::string, V>& entries() const { return entries_; }

 private:
  std::string what_;
  std::map<std::string, V> entries_;  // name order, so listings are stable
};

}  // namespace rill
