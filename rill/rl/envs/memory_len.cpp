// bsuite's memory chain (Osband et al. 2020, google-deepmind/bsuite
// bsuite/environments/memory_chain.py) as used by the memory_len experiment (num_bits 1,
// memory_length swept 1 .. 100) and memory_size (num_bits swept, memory_length 2); type
// "memory_len", config "length" (memory_length, default 10) and "bits" (num_bits, default 1).
// relit.md section 4.
//
// An episode draws `bits` fair context bits and a query index q in 0 .. bits-1; it lasts
// exactly length + 1 steps and only the last one is rewarded: +1 when the action is context
// bit q, -1 otherwise (the episode is a success when it is +1).
//   observation (bits + 2 floats) at time i (bsuite's _get_observation):
//     [0] 1 - i / length (time to live); [1] q at i = length - 1, 0 otherwise (the raw index);
//     [2 ..] the context as +-1 (2 bit - 1) at i = 0, zeros otherwise.
//   The observations follow bsuite's step exactly: reset shows time 0, and step k (1-based)
//   returns the observation of time k-1 (bsuite computes it before advancing the clock), so
//   time 0 (the context) is seen twice, the query comes with the observation the last action
//   answers, and the terminal observation is time `length`.
//   actions: 0 and 1 (the bit); only the last one matters.
// Optimal return 1. A memoryless policy answers from the last observation, which shows the
// context only when length = 1: 1 then, 0 (a coin) otherwise.
#include <algorithm>

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/rl/env.h"
#include "rill/rl/envs/saved_state.h"

namespace rill::rl {
namespace {

class MemoryLen : public Env {
 public:
  MemoryLen(int64_t length, int64_t bits) : length_(length), bits_(bits) {
    spec_.name = fmt::format("memory_len length {} bits {}", length, bits);
    spec_.obs_dim = bits + 2;
    spec_.actions = 2;
    spec_.max_steps = length + 1;
    spec_.optimal_return = 1.0;
    spec_.memoryless_return = length == 1 ? 1.0 : 0.0;
    spec_.has_success = true;
  }

  const EnvSpec& spec() const override { return spec_; }

  void reset(uint64_t seed, uint64_t episode, float* obs) override {
    rng_ = {episode_key(seed, episode), 0};
    context_.assign(size_t(bits_), 0);
    for (auto& b : context_) b = rng_.next() & 1;
    query_ = rng_.below(bits_);
    t_ = 0;
    over_ = false;
    observe(0, obs);
  }

  StepResult step(int64_t action, float* obs) override {
    RILL_CHECK(!over_, "[env] memory_len: step after the episode ended (reset first)");
    RILL_CHECK(action == 0 || action == 1, "[env] memory_len: action {} is not in 0 .. 1", action);
    observe(t_, obs);  // the observation of the time before this step, as bsuite
    ++t_;
    StepResult r;
    if (t_ == length_ + 1) {
      r.terminated = true;
      r.success = action == context_[size_t(query_)];
      r.reward = r.success ? 1.0 : -1.0;
    }
    over_ = r.done();
    return r;
  }

  int64_t oracle_action() const override {
    return context_.empty() ? 0 : context_[size_t(query_)];  // 0 before the first reset
  }

  nlohmann::json save() const override {
    return {
        {"rng", rng_.save()}, {"context", context_}, {"query", query_}, {"t", t_}, {"over", over_}};
  }

  void load(const nlohmann::json& j) override {
    const std::string what = "a saved memory_len state";
    require_keys(j, {"rng", "context", "query", "t", "over"}, what);
    JsonFields f(j, what);
    nlohmann::json rng;
    int64_t query = 0, t = 0;
    bool over = false;
    f.get("rng", rng);
    f.ignore("context");
    const std::vector<int64_t> context = read_int_array(j, "context", bits_, 0, 1, what);
    f.get("query", query);
    f.get("t", t);
    f.get("over", over);
    f.check("query", query, query >= 0 && query < bits_, "in 0 .. bits-1");
    f.check("t", t, t >= 0 && t <= length_ + 1, "in 0 .. length + 1");
    f.check("over", over, over == (t == length_ + 1), "true exactly after the last step");
    f.finish();
    EpisodeRng r;
    r.load(rng);
    rng_ = r, context_ = context, query_ = query, t_ = t, over_ = over;
  }

 private:
  void observe(int64_t i, float* obs) const {
    std::fill(obs, obs + spec_.obs_dim, 0.f);
    obs[0] = float(1.0 - double(i) / double(length_));
    if (i == length_ - 1) obs[1] = float(query_);
    if (i == 0)
      for (int64_t b = 0; b < bits_; ++b) obs[2 + b] = context_[size_t(b)] ? 1.f : -1.f;
  }

  int64_t length_, bits_;
  EnvSpec spec_;
  EpisodeRng rng_;
  std::vector<int64_t> context_;
  int64_t query_ = 0, t_ = 0;
  bool over_ = true;
};

const EnvRegistration kRegistered("memory_len", [](const nlohmann::json& config) {
  JsonFields f(config, "the memory_len environment");
  int64_t length = 10, bits = 1;
  f.get("length", length);
  f.get("bits", bits);
  f.check("length", length, length >= 1 && length <= 1000000, "between 1 and 10^6");
  f.check("bits", bits, bits >= 1 && bits <= 1000, "between 1 and 1000");
  f.finish();
  return std::make_unique<MemoryLen>(length, bits);
});

}  // namespace
}  // namespace rill::rl
