// Streams: start from a prompt, continue token by token under the training context policy,
// save and load.
#include "rill/train/generate.h"

#include "rill/autograd/grad_mode.h"

namespace rill {

void Stream::save(const std::string& path, const std::map<std::string, std::string>& meta) const {
  std::map<std::string, std::string> m = meta;
  m["stream.pending"] = std::to_string(pending);
  m["stream.seed"] = std::to_string(generator.seed());
  m["stream.offset"] = std::to_string(generator.offset());
  m["stream.rebuilds"] = std::to_string(rebuilds);
  State s = state;
  s.set("stream.recent", Tensor::from_vector(recent, {int64_t(recent.size())}));
  s.save(path, m);
}

Stream Stream::load(const std::string& path, std::map<std::string, std::string>* meta) {
  std::map<std::string, std::string> m;
  State all = State::load(path, &m);
  Stream s;
  try {
    s.pending = std::stoll(m.at("stream.pending"));
    s.generator.set_state(std::stoull(m.at("stream.seed")), std::stoull(m.at("stream.offset")));
    s.rebuilds = std::stoll(m.at("stream.rebuilds"));
  } catch (const std::exception&) {
    fail("[generate] {} is a state file without a saved stream (pending token and sampler)", path);
  }
  RILL_CHECK(all.has("stream.recent"), "[generate] {} lacks the stream's recent tokens", path);
  for (const auto& [name, t] : all.tensors())
    if (name == "stream.recent")
      s.recent = t.to_vector<int64_t>();
    else
      s.state.set(name, t);
  if (meta) *meta = m;
  return s;
}

namespace {

void check_tokens(const SequenceModel& model, const std::vector<int64_t>& ids) {
  const int64_t vocab = model.io().vocab;
  RILL_CHECK(vocab > 0, "[generate] the model does not read tokens (it reads {} features)",
             model.io().in_features);
  for (int64_t id : ids)
    RILL_CHECK(id >= 0 && id < vocab, "[generate] token {} is outside the vocabulary of {}", id,
               vocab);
}

// A fresh state that has read `tokens` (all of them) through the parallel form.
State primed_state(SequenceModel& model, const std::vector<int64_t>& tokens) {
  NoGradGuard no_grad;
  State s = model.init_state(1);
  if (!tokens.empty()) model.forward(Tensor::from_vector(tokens, {1, int64_t(tokens.size())}), &s);
  return s;
}

}  // namespace

Stream start_stream(SequenceModel& model, const std::vector<int64_t>& prompt, uint64_t seed,
                    const ContextPolicy& policy) {
  RILL_CHECK(!prompt.empty(), "[generate] the prompt is empty: give at least one token");
  check_tokens(model, prompt);
  Stream s;
  s.generator = Generator(seed);
  s.state = model.init_state(1);
  s.pending = prompt.front();
  extend_stream(model, s, std::vector<int64_t>(prompt.begin() + 1, prompt.end()), policy);
  return s;
}

void extend_stream(SequenceModel& model, Stream& stream, const std::vector<int64_t>& tokens,
                   const ContextPolicy& policy) {
  if (tokens.empty()) return;
  check_tokens(model, tokens);
  RILL_CHECK(stream.pending >= 0, "[generate] the stream has no pending token to extend from");
  // What goes through the model: the pending token and every new token but the last.
  std::vector<int64_t> feed;
  feed.reserve(tokens.size());
  feed.push_back(stream.pending);
  feed.insert(feed.end(), tokens.begin(), tokens.end() - 1);
  stream.pending = tokens.back();
  const int64_t c = policy.trained_context;
  if (c <= 0) {
    NoGradGuard no_grad;
    model.forward(Tensor::from_vector(feed, {1, int64_t(feed.size())}), &stream.state);
    return;
  }
  // continue_stream rebuilds before feeding a token once `recent` holds C tokens, keeping the
  // last keep(); so in seq = recent ++ feed the rebuilds fall before indices C, C + P, C + 2P, ...
  // (P = C - keep()), and the state after seq is the last rebuild's window read in one forward.
  const int64_t k = policy.keep(), period = c - k;
  std::vector<int64_t> seq = std::move(stream.recent);
  seq.insert(seq.end(), feed.begin(), feed.end());
  const int64_t n = int64_t(seq.size());
  if (n <= c) {  // no rebuild: the new tokens go on from the current state
    NoGradGuard no_grad;
    model.forward(Tensor::from_vector(feed, {1, int64_t(feed.size())}), &stream.state);
    stream.recent = std::move(seq);
    return;
  }
  const int64_t rebuilds = (n - 1 - c) / period + 1;  // rebuild indices c + j * period < n
  const int64_t last = c + (rebuilds - 1) * period;
  stream.recent.assign(seq.begin() + (last - k), seq.end());
  stream.state = primed_state(model, stream.recent);
  stream.rebuilds += rebuilds;
}

bool prepare_step(SequenceModel& model, Stream& stream, const ContextPolicy& policy) {
  if (policy.trained_context <= 0) return false;
  bool rebuilt = false;
  if (int64_t(stream.recent.size()) >= policy.trained_context) {
    stream.recent.erase(stream.recent.begin(), stream.recent.end() - policy.keep());
    stream.state = primed_state(model, stream.recent);
    ++stream.rebuilds;
    rebuilt = true;
  }
  stream.recent.push_back(stream.pending);
  return rebuilt;
}

std::vector<int64_t> continue_stream(SequenceModel& model, Stream& stream, int64_t n,
                                     const SamplerOptions& opt, const ContextPolicy& policy,
                                     const std::function<void(int64_t)>& on_token,
                                     ModelStepper* stepper) {
  RILL_CHECK(!stepper || stepper->batch() == 1,
             "[generate] a stream steps alone: its stepper must run 1 stream, not {}",
             stepper ? stepper->batch() : 0);
  RILL_CHECK(n > 0, "[generate] the number of tokens to generate must be positive, got {}", n);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    prepare_step(model, stream, policy);
    const Tensor id = Tensor::from_vector<int64_t>({stream.pending}, {1});
    Tensor logits = stepper ? stepper->step(id, stream.state) : model.step(id, stream.state);
    const int64_t next = sample(logits, opt, stream.generator)[0];
    stream.pending = next;
    out.push_back(next);
    if (on_token) on_token(next);
  }
  return out;
}

}  // namespace rill
