// Test fixtures for `rill serve`: a tiny trained language model's checkpoint, a server in this
// process on a free port, and an HTTP client that reads server-sent events.
#pragma once
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "rill/serve/server.h"

namespace rill::testing {

// Trains the tiny "pattern" language model for `steps` steps under dir/run and returns its
// checkpoint (dir/data holds the corpus).
std::string tiny_lm_checkpoint(const std::string& dir, int64_t steps = 120);

// A server on 127.0.0.1, any free port, in this process; stopped when it goes away.
class TestServer {
 public:
  explicit TestServer(const serve::ServerOptions& options);
  ~TestServer();
  int port() const { return server_.port(); }
  httplib::Client client() const;
  void stop();

 private:
  serve::Server server_;
  std::thread thread_;
};

// A POST whose answer is server-sent events: every `data:` payload but [DONE], parsed. With
// max_events > 0 the client hangs up after that many events.
struct Events {
  int status = 0;
  std::vector<nlohmann::json> events;
  std::string text() const;  // the "text" of every event (session events) or choice (OpenAI)
};
Events post_events(int port, const std::string& path, const nlohmann::json& body,
                   size_t max_events = 0);

// A free TCP port on the loopback right now (for a server in another process).
int free_port();

}  // namespace rill::testing
