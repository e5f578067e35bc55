// The engine of `rill serve`: one thread that owns the model and does all its work, so that
// requests never contend for it. Each request hands it a Job: tokens to read (a prompt) and a
// number of tokens to sample. Reading goes in chunks (chunked prefill, at most `prefill_chunk`
// tokens between two decoding steps, so a long prompt never stalls the streams that are
// generating), and every stream that is generating advances in one batched step per token
// (batched_streams.h). Callbacks run on the engine thread: they must be quick (hand the token to
// the request's thread and return).
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rill/serve/batched_streams.h"

namespace rill::serve {

struct Job {
  Stream* stream = nullptr;      // the request's stream; the engine's alone until on_done
  std::vector<int64_t> prefill;  // read first (extend_stream), in chunks
  int64_t max_tokens = 0;        // then sampled
  SamplerOptions sampler;
  // After the prefill (before sampling): e.g. to keep the state in the prefix cache.
  std::function<void(const Stream&)> on_prefilled;
  // Each sampled token; returning false stops the job (client gone, stop text seen).
  std::function<bool(int64_t)> on_token;
  // Once, at the end: why it ended ("length", "stop", "shutdown", or "error" with a message).
  // The stream is the caller's again.
  std::function<void(const std::string& reason, const std::string& error)> on_done;
};

struct EngineOptions {
  int64_t prefill_chunk = 512;  // tokens read between two decoding steps
  int64_t max_batch = 256;      // streams generating at once; more wait their turn
  // OpenMP threads for reading prompts (parallel form: large products) and for decoding steps.
  // A step takes about a millisecond, less than waking a sleeping pool costs (measured on the
  // 2-core machine: 2.25 ms per step with 2 passive threads against 0.31 ms with one, at batch
  // 1; and one thread was still faster at batch 64), so steps default to one thread.
  int prefill_threads = 0;  // 0: every core
  int step_threads = 1;
};

struct EngineStats {
  int64_t steps = 0;  // batched decoding steps
  int64_t tokens_generated = 0;
  int64_t tokens_prefilled = 0;
  int64_t generating = 0, waiting = 0;  // now
  double mean_batch() const { return steps ? double(tokens_generated) / double(steps) : 0.0; }
};

class Engine {
 public:
  Engine(SequenceModel& model, WeightFormat format, ContextPolicy policy, EngineOptions options);
  ~Engine();  // stop()s

  void submit(std::shared_ptr<Job> job);
  // Ends every job ("shutdown") and the thread; later submissions end at once.
  void stop();
  EngineStats stats() const;
  const ContextPolicy& policy() const { return policy_; }

 private:
  void run();
  void finish(const std::shared_ptr<Job>& job, const std::string& reason, const std::string& error);
  bool prefill_some();  // with the lock released; true when something was read
  void decode_step();

  SequenceModel& model_;
  ContextPolicy policy_;
  EngineOptions opt_;
  BatchedStreams batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> incoming_;  // guarded by mu_
  bool stopping_ = false;                      // guarded by mu_
  // Engine thread only:
  std::deque<std::shared_ptr<Job>> reading_;  // prefill not done
  std::deque<std::shared_ptr<Job>> ready_;    // waiting for a place in the batch
  struct Active {
    std::shared_ptr<Job> job;
    int64_t generated = 0;
  };
  std::map<int, Active> generating_;  // by batch handle
  mutable std::mutex stats_mu_;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace rill::serve
