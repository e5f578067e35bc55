// Fixtures for the server's tests (serving.h).
#include "tests/support/serving.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill/serve/event_reader.h"
#include "rill/train/trainer.h"
#include "tests/support/runs.h"

namespace rill::testing {

std::string tiny_lm_checkpoint(const std::string& dir, int64_t steps) {
  prepare_pattern_corpus(dir + "/data");
  TrainConfig c = tiny_lm_run(dir + "/data", dir + "/run",
                              {{"type", "linear_attention"},
                               {"heads", 2},
                               {"chunk", 8},
                               {"decay", "input"},
                               {"local", "shift"}});
  c.steps = steps, c.warmup = 10, c.eval_every = steps, c.checkpoint_every = steps;
  train(c, false);
  return dir + "/run/checkpoint.safetensors";
}

TestServer::TestServer(const serve::ServerOptions& options)
    : server_([&] {
        serve::ServerOptions o = options;
        o.host = "127.0.0.1", o.port = 0;
        return o;
      }()) {
  thread_ = std::thread([this] { server_.listen(); });
  server_.wait_until_ready();
}

TestServer::~TestServer() { stop(); }

void TestServer::stop() {
  if (!thread_.joinable()) return;
  server_.stop();
  thread_.join();
}

httplib::Client TestServer::client() const {
  httplib::Client c("127.0.0.1", port());
  c.set_read_timeout(std::chrono::seconds(60));
  return c;
}

std::string Events::text() const {
  std::string s;
  for (const auto& e : events) {
    if (e.contains("text")) s += e["text"].get<std::string>();
    if (e.contains("choices")) s += e["choices"][0]["text"].get<std::string>();
  }
  return s;
}

Events post_events(int port, const std::string& path, const nlohmann::json& body,
                   size_t max_events) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(std::chrono::seconds(60));
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  Events out;
  serve::EventReader events([&](const nlohmann::json& e) { out.events.push_back(e); });
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    events.feed(data, n);
    return max_events == 0 || out.events.size() < max_events;
  };
  auto res = cli.send(req);
  out.status = res ? res->status : -1;
  return out;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace rill::testing
