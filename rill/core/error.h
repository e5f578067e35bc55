// Errors: one exception type; messages start with "[op]" and show the shapes involved.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace rill {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace rill

// RILL_CHECK(cond, "[op] message {}", arg): throws rill::Error when cond is false.
#define RILL_CHECK(cond, ...)               \
  do {                                      \
    if (!(cond)) ::rill::fail(__VA_ARGS__); \
  } while (0)
