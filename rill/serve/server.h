// `rill serve`: a trained language model behind HTTP (http_server.cpp has the routes and why
// cpp-httplib). The pieces: durable sessions (session_store.h), the prefix cache
// (prefix_cache.h), the engine thread with chunked prefill and batched stepping (engine.h), the
// request parser (requests.h) and the page at / (page.h).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "rill/serve/requests.h"

namespace rill::serve {

struct ServerOptions {
  std::string checkpoint;
  std::string data_dir = "data";  // where a word model's vocabulary is
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (port() says which)
  std::string sessions_dir = "sessions";
  std::string weights = "f32";  // the step path's weight format
  int64_t max_sessions = 1024;
  int64_t memory_cap_mb = 512;  // resident session states beyond it go to disk
  int64_t cache_entries = 64;   // prefix cache
  int64_t cache_mb = 256;
  int64_t prefill_chunk = 512;
  int64_t max_batch = 256;
  int64_t max_prompt_tokens = 65536;
  int http_threads = 512;  // each open connection holds one (max_batch streams and more)
  int threads = 0;         // threads reading prompts (OpenMP); 0: all cores
  int step_threads = 1;    // threads of a decoding step (engine.h says why one)
  Limits limits;
};

class Server {
 public:
  explicit Server(const ServerOptions& options);  // loads the model and the saved sessions
  ~Server();
  // Binds and serves until stop(); returns false when the address cannot be bound.
  bool listen();
  // Ends every request (streams end with finish reason "shutdown" and their sessions are
  // saved), then stops listening. Safe from another thread or a signal-watching thread.
  void stop();
  int port() const;  // the bound port, after listen() started (wait_until_ready)
  void wait_until_ready() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The resident set size of this process in bytes (Linux /proc/self/statm).
int64_t resident_set_bytes();

}  // namespace rill::serve
