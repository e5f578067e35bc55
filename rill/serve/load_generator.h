// `rill bench-serve`: load for a running `rill serve`, on loopback only, bounded in sessions,
// tokens and time.
//  * Streaming load: N sessions at once, each created with a prompt and continued for T tokens
//    as server-sent events. Reports per-token latency (the gaps between a stream's events, p50
//    and p99), time to first token, aggregate tokens/s, the server's RSS sampled over the run,
//    and the prefix cache's hit rate.
//  * Conversation: turns of prompt + completion through /v1/completions over a history of H
//    tokens, each turn re-sending the whole conversation (as a stateless client does), timed
//    with the prefix cache and with "reuse_prefix": false (re-reading the whole history, which
//    is what llama.cpp's server does for recurrent models).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rill::serve {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int64_t sessions = 8;  // concurrent streams
  int64_t tokens = 256;  // per stream
  std::string prompt = "In the beginning";
  double max_seconds = 300;  // the whole run stops (closing its streams) after this
  double rss_every_s = 1.0;  // server RSS sample period
  double temperature = 1.0;
};

struct LoadReport {
  int64_t sessions = 0, tokens = 0, failed = 0;
  std::string first_error;  // of the failed sessions, the first
  double seconds = 0, tokens_per_s = 0;
  double p50_ms = 0, p99_ms = 0;                // between tokens of one stream
  double first_p50_ms = 0, first_p99_ms = 0;    // request to first token
  std::vector<std::pair<double, int64_t>> rss;  // (seconds, bytes)
  double prefix_hit_rate = 0;
  double mean_batch = 0;
  nlohmann::json to_json() const;
};

LoadReport run_load(const LoadOptions& opt);

struct ConversationOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::vector<int64_t> histories = {1000, 8000, 32000};  // tokens of history before turn 1
  int64_t turns = 20;
  int64_t user_tokens = 32, reply_tokens = 32;
  std::string text;  // the filler the history and the user turns are cut from
};

struct ConversationRow {
  int64_t history = 0;
  double reuse_ms = 0, reread_ms = 0;              // median time per turn
  double reuse_first_ms = 0, reread_first_ms = 0;  // turn 1 (nothing cached for it yet)
};

std::vector<ConversationRow> run_conversation(const ConversationOptions& opt);

// RSS of the server before and after creating `sessions` idle sessions (each read `prompt`),
// which are deleted again: memory per session against the model's state bytes.
struct IdleReport {
  int64_t sessions = 0, rss_before = 0, rss_after = 0, state_bytes = 0;
  double per_session() const { return double(rss_after - rss_before) / double(sessions); }
};
IdleReport run_idle(const LoadOptions& opt);

// Refuses any host but the loopback (the load generator never leaves the machine).
void check_loopback(const std::string& host);

}  // namespace rill::serve
