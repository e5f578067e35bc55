// Server-sent events, read (event_reader.h).
#include "rill/serve/event_reader.h"

namespace rill::serve {

void EventReader::feed(const char* data, size_t n) {
  buffer_.append(data, n);
  size_t cut;
  while ((cut = buffer_.find("\n\n")) != std::string::npos) {
    const std::string line = buffer_.substr(0, cut);
    buffer_.erase(0, cut + 2);
    if (line.rfind("data: ", 0) == 0 && line != "data: [DONE]")
      on_event_(nlohmann::json::parse(line.substr(6)));
  }
}

}  // namespace rill::serve
