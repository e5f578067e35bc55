// Streaming generation with the recurrent (step) form of a token model. A Stream holds
// everything needed to go on: the model state, the token still to be fed, the sampler's
// generator and the recent tokens, so it can be saved after a prompt and continued later with
// identical output.
//
// Context policy. A model trained with its state reset every C tokens (a language-modelling task
// with reset_every, or without carried state) never saw a context longer than C; run on and on,
// its state would leave the distribution it was trained on. So generation follows the training
// policy: once C tokens have gone through the state since it was fresh, the state is rebuilt
// from the last C/2 tokens (one parallel forward), and the context stays between C/2 and C. A
// model trained with an unbounded carried state (C = 0) just runs on.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "rill/mixers/state.h"
#include "rill/models/sequence_model.h"
#include "rill/train/sampler.h"

namespace rill {

struct ContextPolicy {
  int64_t trained_context = 0;  // C: tokens since a fresh state at most (0: unbounded)
  int64_t keep() const { return trained_context / 2; }  // tokens re-read after a rebuild
};

struct Stream {
  State state;                  // after every token but `pending`
  int64_t pending = -1;         // the next token to feed (the last of the prompt, then each sample)
  Generator generator{0};       // the sampler's (seed, offset)
  std::vector<int64_t> recent;  // the tokens since the state was fresh (bounded policies only)
  int64_t rebuilds = 0;         // times the state was rebuilt from recent tokens

  // meta is stored beside the stream (e.g. which checkpoint it belongs to).
  void save(const std::string& path, const std::map<std::string, std::string>& meta = {}) const;
  static Stream load(const std::string& path, std::map<std::string, std::string>* meta = nullptr);
};

// Starts a stream of one sequence: all prompt tokens but the last go through the parallel
// (chunkwise) forward, which leaves the state; the last one waits in `pending`. Equal to a fresh
// stream whose pending token is prompt[0], extended by the rest (below).
Stream start_stream(SequenceModel& model, const std::vector<int64_t>& prompt, uint64_t seed,
                    const ContextPolicy& policy = {});

// Appends tokens to a stream without sampling (a prompt for the next turn, or chunked prefill):
// `pending` and all new tokens but the last go through the parallel forward, and the last becomes
// pending. The state then depends only on the tokens the stream has read, not on how they were
// cut: extending by A then B equals extending by A+B, equals start_stream on the whole history,
// and equals stepping the tokens one by one as continue_stream does, rebuilds included (the
// policy's rebuilds fall at fixed token counts; a history longer than the context is read only
// from the last rebuild on, so reading it costs at most C tokens). Empty `tokens` do nothing.
void extend_stream(SequenceModel& model, Stream& stream, const std::vector<int64_t>& tokens,
                   const ContextPolicy& policy = {});

// Before `pending` goes through a step: rebuilds the state from the recent tokens when the policy
// says so (returning true: stream.state is then the rebuilt one, whatever it held), and records
// `pending` among the recent tokens. continue_stream calls it for every token; a caller that
// steps streams itself (a batch of them) calls it too.
bool prepare_step(SequenceModel& model, Stream& stream, const ContextPolicy& policy);

// Feeds `pending` with step(), samples the next token, makes it pending, and repeats n times.
// on_token sees each new token as soon as it is sampled (for streaming output). With a stepper
// (model.make_stepper(1, format)) the tokens go through its tight path instead of the tensor
// step; the stream's state is the same either way.
std::vector<int64_t> continue_stream(SequenceModel& model, Stream& stream, int64_t n,
                                     const SamplerOptions& opt, const ContextPolicy& policy = {},
                                     const std::function<void(int64_t)>& on_token = {},
                                     ModelStepper* stepper = nullptr);

}  // namespace rill
