#include "rill/train/generate.h"

#include "rill/autograd/grad_mode.h"

namespace rill {

void Stream::save(const std::string& path, const std::map<std::string, std::string>& meta) const {
  std::map<std::string, std::string> m = meta;
  m["stream.pending"] = std::to_string(pending);
  m["stream.seed"] = std::to_string(generator.seed());
  m["stream.offset"] = std::to_string(generator.offset());
  state.save(path, m);
}

Stream Stream::load(const std::string& path, std::map<std::string, std::string>* meta) {
  std::map<std::string, std::string> m;
  Stream s;
  s.state = State::load(path, &m);
  try {
    s.pending = std::stoll(m.at("stream.pending"));
    s.generator.set_state(std::stoull(m.at("stream.seed")), std::stoull(m.at("stream.offset")));
  } catch (const std::exception&) {
    fail("[generate] {} is a state file without a saved stream (pending token and sampler)", path);
  }
  if (meta) *meta = m;
  return s;
}

Stream start_stream(LanguageModel& model, const std::vector<int64_t>& prompt, uint64_t seed) {
  RILL_CHECK(!prompt.empty(), "[generate] the prompt is empty: give at least one token");
  for (int64_t id : prompt)
    RILL_CHECK(id >= 0 && id < model.config.vocab,
               "[generate] prompt token {} is outside the vocabulary of {}", id,
               model.config.vocab);
  NoGradGuard no_grad;
  Stream s;
  s.state = model.init_state(1);
  s.generator = Generator(seed);
  if (prompt.size() > 1) {
    std::vector<int64_t> head(prompt.begin(), prompt.end() - 1);
    model.forward(Tensor::from_vector(head, {1, int64_t(head.size())}), &s.state);
  }
  s.pending = prompt.back();
  return s;
}

std::vector<int64_t> continue_stream(LanguageModel& model, Stream& stream, int64_t n,
                                     const SamplerOptions& opt,
                                     const std::function<void(int64_t)>& on_token) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    Tensor logits = model.step(Tensor::from_vector<int64_t>({stream.pending}, {1}), stream.state);
    int64_t next = sample(logits, opt, stream.generator)[0];
    stream.pending = next;
    out.push_back(next);
    if (on_token) on_token(next);
  }
  return out;
}

}  // namespace rill
