// Streaming generation with the recurrent (step) form. A Stream holds everything needed to go
// on: the model state, the token still to be fed, and the sampler's generator, so it can be
// saved after a prompt and continued later with identical output.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "rill/mixers/state.h"
#include "rill/models/language_model.h"
#include "rill/train/sampler.h"

namespace rill {

struct Stream {
  State state;             // after every token but `pending`
  int64_t pending = -1;    // the next token to feed (the last of the prompt, then each sample)
  Generator generator{0};  // the sampler's (seed, offset)

  void save(const std::string& path, const std::map<std::string, std::string>& meta = {}) const;
  static Stream load(const std::string& path, std::map<std::string, std::string>* meta = nullptr);
};

// Starts a stream of one sequence: all prompt tokens but the last go through the parallel
// (chunkwise) forward, which leaves the state; the last one waits in `pending`.
Stream start_stream(LanguageModel& model, const std::vector<int64_t>& prompt, uint64_t seed);

// Feeds `pending` with step(), samples the next token, makes it pending, and repeats n times.
// on_token sees each new token as soon as it is sampled (for streaming output).
std::vector<int64_t> continue_stream(LanguageModel& model, Stream& stream, int64_t n,
                                     const SamplerOptions& opt,
                                     const std::function<void(int64_t)>& on_token = {});

}  // namespace rill
