// The client side of server-sent events: bytes as they arrive from a streamed response, cut into
// events at blank lines; each "data: " payload but OpenAI's closing "[DONE]" is parsed as JSON.
// The load generator and the tests read the server's streams with it.
#pragma once
#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace rill::serve {

class EventReader {
 public:
  explicit EventReader(std::function<void(const nlohmann::json&)> on_event)
      : on_event_(std::move(on_event)) {}
  // Takes the next bytes of the response; calls on_event for every event they complete.
  void feed(const char* data, size_t n);

 private:
  std::function<void(const nlohmann::json&)> on_event_;
  std::string buffer_;  // an event not yet complete
};

}  // namespace rill::serve
