// `rill serve` as its own process, killed: with kill -9 under load at random moments, a
// restarted server has every session a client was told exists, each with at least the tokens of
// its last completed request and at most those plus the request in flight; with SIGTERM, the
// running streams end with finish reason "shutdown" and are saved.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/support/files.h"
#include "tests/support/serving.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

// `rill serve` in a child process; waits until it answers.
pid_t start_server(const std::string& checkpoint, const std::string& dir, int port,
                   const char* max_tokens = "4096") {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string log = dir + "/serve.log";
    freopen(log.c_str(), "a", stderr);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    const std::string p = std::to_string(port);
    const std::string sessions = dir + "/sessions";
    const std::string data = dir + "/data";
    execl(RILL_CLI, RILL_CLI, "serve", "--checkpoint", checkpoint.c_str(), "--port", p.c_str(),
          "--sessions-dir", sessions.c_str(), "--data-dir", data.c_str(), "--http-threads", "64",
          "--max-tokens", max_tokens, nullptr);
    _exit(127);
  }
  httplib::Client c("127.0.0.1", port);
  for (int i = 0; i < 600; ++i) {
    if (auto r = c.Get("/v1/stats"); r && r->status == 200) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "the server did not start; see " << dir << "/serve.log";
  return pid;
}

// What clients were told: per session, the tokens of its last completed request, and the most
// it could have (those plus what a request in flight streamed).
struct Told {
  std::mutex mu;
  std::map<std::string, int64_t> saved, at_most;
};

// Clients that create sessions and continue them until the server goes away.
void load(int port, Told& told, std::atomic<bool>& stop, int client) {
  std::mt19937 rng(client);
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(std::chrono::seconds(5));
  std::string id;
  while (!stop) {
    if (id.empty() || rng() % 5 == 0) {
      auto r = c.Post("/v1/sessions", json{{"prompt", "one then"}}.dump(), "application/json");
      if (!r || r->status != 201) return;
      id = json::parse(r->body)["id"];
      std::lock_guard<std::mutex> lock(told.mu);
      told.saved[id] = told.at_most[id] = json::parse(r->body)["tokens"];
    }
    const int64_t n = 20 + rng() % 200;
    {
      std::lock_guard<std::mutex> lock(told.mu);
      told.at_most[id] = told.saved[id] + 2 + n;  // prompt (2 bytes) and tokens
    }
    Events e = post_events(port, "/v1/sessions/" + id + "/continue",
                           {{"prompt", " t"}, {"max_tokens", n}});
    if (e.status != 200 || e.events.empty() || e.events.back().value("type", "") != "done") return;
    if (!e.events.back().value("saved", false)) return;
    std::lock_guard<std::mutex> lock(told.mu);
    told.saved[id] = told.at_most[id] = e.events.back()["session_tokens"];
  }
}

std::map<std::string, int64_t> sessions_on(int port) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/v1/sessions");
  std::map<std::string, int64_t> out;
  if (!r || r->status != 200) return out;
  const json list = json::parse(r->body);  // (named: a temporary's ["sessions"] would dangle)
  for (const auto& s : list["sessions"]) out[s["id"]] = s["tokens"];
  return out;
}

}  // namespace

TEST(ServeDurability, KillNineUnderLoadLosesNoSession) {
  TempDir dir;
  const std::string ckpt = tiny_lm_checkpoint(dir.str());
  const int port = free_port();
  Told told;
  std::mt19937 rng(7);
  int64_t lost_sessions = 0, lost_tokens = 0, in_flight_tokens = 0, checked = 0;
  // After a restart: is everything told so far there? What the server has is the truth after.
  auto check = [&](int port) {
    const auto have = sessions_on(port);
    std::lock_guard<std::mutex> lock(told.mu);
    for (const auto& [id, saved] : told.saved) {
      ++checked;
      auto it = have.find(id);
      if (it == have.end()) {
        ++lost_sessions;
        continue;
      }
      lost_tokens += std::max<int64_t>(0, saved - it->second);
      EXPECT_LE(it->second, told.at_most[id]) << id;
      in_flight_tokens += it->second - saved;
      told.saved[id] = told.at_most[id] = it->second;
    }
  };
  for (int round = 0; round < 5; ++round) {
    const pid_t pid = start_server(ckpt, dir.str(), port);
    check(port);
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int i = 0; i < 6; ++i)
      clients.emplace_back([&, i] { load(port, told, stop, 100 * round + i); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1500));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    stop = true;
    for (auto& t : clients) t.join();
  }
  const pid_t pid = start_server(ckpt, dir.str(), port);
  check(port);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  std::printf(
      "kill -9 at 5 moments: %zu sessions, %lld checks after restarts, %lld sessions lost, %lld "
      "tokens of completed requests lost, %lld tokens of requests in flight kept\n",
      told.saved.size(), (long long)checked, (long long)lost_sessions, (long long)lost_tokens,
      (long long)in_flight_tokens);
  EXPECT_GT(told.saved.size(), 5u);
  EXPECT_EQ(lost_sessions, 0);
  EXPECT_EQ(lost_tokens, 0);
}

TEST(ServeDurability, SigtermEndsRunningStreamsAndSavesThem) {
  TempDir dir;
  const std::string ckpt = tiny_lm_checkpoint(dir.str());
  const int port = free_port();
  const pid_t pid = start_server(ckpt, dir.str(), port, "10000000");
  httplib::Client c("127.0.0.1", port);
  auto r = c.Post("/v1/sessions", json{{"prompt", "one then"}}.dump(), "application/json");
  ASSERT_TRUE(r && r->status == 201);
  const std::string id = json::parse(r->body)["id"];
  Events e;
  std::thread stream([&] {
    e = post_events(port, "/v1/sessions/" + id + "/continue", {{"max_tokens", 10000000}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGTERM);
  stream.join();
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_FALSE(e.events.empty());
  const json last = e.events.back();
  EXPECT_EQ(last["finish_reason"], "shutdown") << last.dump();
  EXPECT_TRUE(last["saved"].get<bool>());
  EXPECT_LT(last["tokens"].get<int64_t>(), 10000000);
  const pid_t again = start_server(ckpt, dir.str(), port);
  EXPECT_EQ(sessions_on(port)[id], last["session_tokens"].get<int64_t>());
  kill(again, SIGKILL);
  waitpid(again, nullptr, 0);
}
