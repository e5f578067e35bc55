// The engine thread (engine.h): take new jobs, read a chunk of prompts, take one batched step,
// repeat; sleep when there is nothing to do.
#include "rill/serve/engine.h"

#include <omp.h>

#include "rill/core/error.h"

namespace rill::serve {

Engine::Engine(SequenceModel& model, WeightFormat format, ContextPolicy policy,
               EngineOptions options)
    : model_(model), policy_(policy), opt_(options), batch_(model, format, policy) {
  RILL_CHECK(opt_.prefill_chunk > 0 && opt_.max_batch > 0 && opt_.step_threads > 0 &&
                 opt_.prefill_threads >= 0,
             "[serve] the prefill chunk ({}), the batch ({}) and the step threads ({}) must be "
             "positive",
             opt_.prefill_chunk, opt_.max_batch, opt_.step_threads);
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() { stop(); }

void Engine::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      incoming_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  finish(job, "shutdown", "");
}

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void Engine::finish(const std::shared_ptr<Job>& job, const std::string& reason,
                    const std::string& error) {
  if (job->on_done) job->on_done(reason, error);
}

bool Engine::prefill_some() {
  int64_t budget = opt_.prefill_chunk;
  if (!reading_.empty())
    omp_set_num_threads(opt_.prefill_threads > 0 ? opt_.prefill_threads : omp_get_num_procs());
  bool did = false;
  while (budget > 0 && !reading_.empty()) {
    std::shared_ptr<Job> job = reading_.front();
    int64_t n = std::min<int64_t>(budget, int64_t(job->prefill.size()));
    // Under a bounded context, a prompt that outlasts it is read only from its last rebuild on
    // (extend_stream): given whole, it costs at most C tokens, so it is not cut into chunks.
    const int64_t c = policy_.trained_context;
    if (c > 0 && int64_t(job->stream->recent.size() + job->prefill.size()) > c)
      n = int64_t(job->prefill.size());
    try {
      if (n > 0) {
        std::vector<int64_t> piece(job->prefill.begin(), job->prefill.begin() + n);
        job->prefill.erase(job->prefill.begin(), job->prefill.begin() + n);
        extend_stream(model_, *job->stream, piece, policy_);  // exact in any chunks
        std::lock_guard<std::mutex> lock(stats_mu_);
        stats_.tokens_prefilled += n;
      }
      budget -= std::max<int64_t>(n, 1);
      did = true;
      if (!job->prefill.empty()) continue;
      reading_.pop_front();
      if (job->on_prefilled) job->on_prefilled(*job->stream);
      if (job->max_tokens > 0)
        ready_.push_back(job);
      else
        finish(job, "length", "");
    } catch (const std::exception& e) {
      reading_.pop_front();
      finish(job, "error", e.what());
    }
  }
  return did;
}

void Engine::decode_step() {
  while (!ready_.empty() && int64_t(generating_.size()) < opt_.max_batch) {
    std::shared_ptr<Job> job = ready_.front();
    ready_.pop_front();
    try {
      generating_[batch_.join(job->stream, job->sampler)] = {job, 0};
    } catch (const std::exception& e) {
      finish(job, "error", e.what());
    }
  }
  if (generating_.empty()) return;
  omp_set_num_threads(opt_.step_threads);
  std::vector<std::pair<int, int64_t>> tokens;
  try {
    tokens = batch_.step();
  } catch (const std::exception& e) {  // the model failed: end every job in the batch
    for (auto& [handle, a] : generating_) {
      batch_.leave(handle);
      finish(a.job, "error", e.what());
    }
    generating_.clear();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.steps;
    stats_.tokens_generated += int64_t(tokens.size());
  }
  for (const auto& [handle, token] : tokens) {
    Active& a = generating_.at(handle);
    ++a.generated;
    const bool go_on = !a.job->on_token || a.job->on_token(token);
    if (go_on && a.generated < a.job->max_tokens) continue;
    std::shared_ptr<Job> job = a.job;
    generating_.erase(handle);
    batch_.leave(handle);
    finish(job, go_on ? "length" : "stop", "");
  }
}

void Engine::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stopping_ || !incoming_.empty() || !reading_.empty() || !ready_.empty() ||
               !generating_.empty();
      });
      for (auto& j : incoming_) reading_.push_back(std::move(j));
      incoming_.clear();
      if (stopping_) break;
    }
    prefill_some();
    decode_step();
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.generating = int64_t(generating_.size());
    stats_.waiting = int64_t(reading_.size() + ready_.size());
  }
  // Shutdown: every job ends now; streams that were generating get their state back first.
  for (auto& [handle, a] : generating_) {
    batch_.leave(handle);
    finish(a.job, "shutdown", "");
  }
  generating_.clear();
  for (auto& j : reading_) finish(j, "shutdown", "");
  for (auto& j : ready_) finish(j, "shutdown", "");
  reading_.clear(), ready_.clear();
}

}  // namespace rill::serve
