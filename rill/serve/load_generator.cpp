// The load generator (load_generator.h): one client thread per stream, timestamps per event.
#include "rill/serve/load_generator.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "rill/core/error.h"
#include "rill/serve/event_reader.h"

namespace rill::serve {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

void check_loopback(const std::string& host) {
  RILL_CHECK(host == "127.0.0.1" || host == "localhost" || host == "::1",
             "[bench-serve] the load generator only talks to this machine (127.0.0.1, localhost "
             "or ::1), not {}",
             host);
}

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
  return v[i];
}

json get_json(httplib::Client& cli, const std::string& path) {
  auto r = cli.Get(path);
  RILL_CHECK(r && r->status == 200, "[bench-serve] GET {} failed: {}", path,
             r ? r->body : httplib::to_string(r.error()));
  return json::parse(r->body);
}

// Posts `body` to `path` and calls on_event(json) for every server-sent event; false when the
// request failed. stop_at: give up (closing the stream) once this moment has passed. One
// connection per session (create, stream, delete): the server holds a thread per connection.
bool post_events(httplib::Client& cli, const std::string& path, const json& body,
                 const std::function<void(const json&)>& on_event, Clock::time_point stop_at) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  EventReader events(on_event);
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    events.feed(data, n);
    return Clock::now() < stop_at;
  };
  auto res = cli.send(req);
  return res && res->status == 200;
}

}  // namespace

LoadReport run_load(const LoadOptions& opt) {
  check_loopback(opt.host);
  RILL_CHECK(opt.sessions > 0 && opt.sessions <= 4096 && opt.tokens > 0 && opt.max_seconds > 0,
             "[bench-serve] sessions must be in [1, 4096], tokens and the time limit positive");
  httplib::Client control(opt.host, opt.port);
  const json before = get_json(control, "/v1/stats");
  const Clock::time_point t0 = Clock::now();
  const Clock::time_point stop_at = t0 + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(opt.max_seconds));
  LoadReport rep;
  rep.sessions = opt.sessions;
  std::mutex mu;
  std::vector<double> gaps, firsts;
  std::atomic<int64_t> tokens{0}, failed{0};
  std::atomic<bool> running{true};
  std::thread sampler([&] {
    httplib::Client cli(opt.host, opt.port);
    while (running) {
      if (auto r = cli.Get("/v1/stats"); r && r->status == 200) {
        std::lock_guard<std::mutex> lock(mu);
        rep.rss.emplace_back(seconds_since(t0),
                             json::parse(r->body).value("rss_bytes", int64_t(0)));
      }
      for (double w = 0; w < opt.rss_every_s && running; w += 0.05)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::vector<std::thread> clients;
  for (int64_t i = 0; i < opt.sessions; ++i)
    clients.emplace_back([&, i] {
      httplib::Client cli(opt.host, opt.port);
      cli.set_read_timeout(std::chrono::seconds(600));  // 2 cores shared by server and clients
      cli.set_write_timeout(std::chrono::seconds(60));
      auto r = cli.Post("/v1/sessions", json{{"prompt", opt.prompt}, {"seed", i}}.dump(),
                        "application/json");
      if (!r || r->status != 201) {
        ++failed;
        std::lock_guard<std::mutex> lock(mu);
        if (rep.first_error.empty())
          rep.first_error =
              fmt::format("creating a session, {:.1f} s into the run: {}", seconds_since(t0),
                          r ? r->body : httplib::to_string(r.error()));
        return;
      }
      const std::string id = json::parse(r->body).at("id");
      std::vector<double> my_gaps;
      double first = -1;
      Clock::time_point last = Clock::now();
      const Clock::time_point start = last;
      int64_t n = 0;
      const bool ok = post_events(
          cli, "/v1/sessions/" + id + "/continue",
          {{"max_tokens", opt.tokens}, {"temperature", opt.temperature}, {"stream", true}},
          [&](const json& ev) {
            const Clock::time_point now = Clock::now();
            if (ev.value("type", "") == "token") {
              if (first < 0)
                first = std::chrono::duration<double, std::milli>(now - start).count();
              else
                my_gaps.push_back(std::chrono::duration<double, std::milli>(now - last).count());
              last = now;
            } else if (ev.value("type", "") == "done") {
              n = ev.value("tokens", int64_t(0));
            }
          },
          stop_at);
      if (!ok && n == 0) {
        ++failed;
        std::lock_guard<std::mutex> lock(mu);
        if (rep.first_error.empty()) rep.first_error = "a stream ended without its last event";
      }
      tokens += n;
      std::lock_guard<std::mutex> lock(mu);
      gaps.insert(gaps.end(), my_gaps.begin(), my_gaps.end());
      if (first >= 0) firsts.push_back(first);
      cli.Delete("/v1/sessions/" + id);
    });
  for (auto& t : clients) t.join();
  rep.seconds = seconds_since(t0);
  running = false;
  sampler.join();
  const json after = get_json(control, "/v1/stats");
  rep.tokens = tokens;
  rep.failed = failed;
  rep.tokens_per_s = rep.seconds > 0 ? double(rep.tokens) / rep.seconds : 0;
  rep.p50_ms = percentile(gaps, 0.5), rep.p99_ms = percentile(gaps, 0.99);
  rep.first_p50_ms = percentile(firsts, 0.5), rep.first_p99_ms = percentile(firsts, 0.99);
  const auto& pc0 = before.at("prefix_cache");
  const auto& pc1 = after.at("prefix_cache");
  const int64_t lookups = pc1.value("lookups", int64_t(0)) - pc0.value("lookups", int64_t(0));
  const int64_t hits = pc1.value("hits", int64_t(0)) - pc0.value("hits", int64_t(0));
  rep.prefix_hit_rate = lookups > 0 ? double(hits) / double(lookups) : 0;
  const auto& e0 = before.at("engine");
  const auto& e1 = after.at("engine");
  const int64_t steps = e1.value("steps", int64_t(0)) - e0.value("steps", int64_t(0));
  const int64_t gen =
      e1.value("tokens_generated", int64_t(0)) - e0.value("tokens_generated", int64_t(0));
  rep.mean_batch = steps > 0 ? double(gen) / double(steps) : 0;
  return rep;
}

json LoadReport::to_json() const {
  json r = json::array();
  for (const auto& [t, b] : rss) r.push_back({t, b});
  return {{"sessions", sessions},
          {"tokens", tokens},
          {"failed", failed},
          {"seconds", seconds},
          {"tokens_per_s", tokens_per_s},
          {"p50_ms", p50_ms},
          {"p99_ms", p99_ms},
          {"first_token_p50_ms", first_p50_ms},
          {"first_token_p99_ms", first_p99_ms},
          {"prefix_hit_rate", prefix_hit_rate},
          {"mean_batch", mean_batch},
          {"rss", r}};
}

IdleReport run_idle(const LoadOptions& opt) {
  check_loopback(opt.host);
  RILL_CHECK(opt.sessions > 0 && opt.sessions <= 100000,
             "[bench-serve] --idle takes 1 to 100000 sessions, got {}", opt.sessions);
  httplib::Client cli(opt.host, opt.port);
  cli.set_read_timeout(std::chrono::seconds(600));
  IdleReport rep;
  rep.sessions = opt.sessions;
  const json before = get_json(cli, "/v1/stats");
  rep.rss_before = before.value("rss_bytes", int64_t(0));
  rep.state_bytes = before.value("state_bytes_per_session", int64_t(0));
  std::vector<std::string> ids;
  for (int64_t i = 0; i < opt.sessions; ++i) {
    auto r = cli.Post("/v1/sessions", json{{"prompt", opt.prompt}}.dump(), "application/json");
    RILL_CHECK(r && r->status == 201, "[bench-serve] creating idle session {} failed: {}", i,
               r ? r->body : httplib::to_string(r.error()));
    ids.push_back(json::parse(r->body).at("id"));
  }
  rep.rss_after = get_json(cli, "/v1/stats").value("rss_bytes", int64_t(0));
  for (const std::string& id : ids) cli.Delete("/v1/sessions/" + id);
  return rep;
}

std::vector<ConversationRow> run_conversation(const ConversationOptions& opt) {
  check_loopback(opt.host);
  RILL_CHECK(!opt.text.empty(), "[bench-serve] the conversation needs text to cut turns from");
  RILL_CHECK(opt.turns > 0 && opt.user_tokens > 0 && opt.reply_tokens > 0,
             "[bench-serve] turns, user and reply tokens must be positive");
  std::vector<ConversationRow> rows;
  size_t cursor = 0;
  auto take = [&](int64_t n) {  // the next n bytes of the filler, wrapping around
    std::string s;
    while (int64_t(s.size()) < n) {
      const size_t k = std::min<size_t>(size_t(n) - s.size(), opt.text.size() - cursor);
      s += opt.text.substr(cursor, k);
      cursor = (cursor + k) % opt.text.size();
    }
    return s;
  };
  for (int64_t h : opt.histories) {
    ConversationRow row;
    row.history = h;
    for (bool reuse : {true, false}) {
      std::string history = take(h);
      std::vector<double> times;
      httplib::Client cli(opt.host, opt.port);
      cli.set_read_timeout(std::chrono::seconds(600));
      for (int64_t t = 0; t < opt.turns; ++t) {
        history += take(opt.user_tokens);
        const Clock::time_point t0 = Clock::now();
        auto r = cli.Post("/v1/completions",
                          json{{"prompt", history},
                               {"max_tokens", opt.reply_tokens},
                               {"temperature", 0},
                               {"reuse_prefix", reuse}}
                              .dump(),
                          "application/json");
        RILL_CHECK(r && r->status == 200, "[bench-serve] a completion failed: {}",
                   r ? r->body : httplib::to_string(r.error()));
        times.push_back(seconds_since(t0) * 1e3);
        history += json::parse(r->body).at("choices").at(0).at("text").get<std::string>();
      }
      const double first = times.front();
      std::vector<double> rest(times.begin() + 1, times.end());
      (reuse ? row.reuse_ms : row.reread_ms) = percentile(rest.empty() ? times : rest, 0.5);
      (reuse ? row.reuse_first_ms : row.reread_first_ms) = first;
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace rill::serve
