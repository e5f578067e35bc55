// Language modelling: batches from the contiguous-lane batcher, cross-entropy, evaluation under
// the training carry policy, and the tokenizer check for generation.
#include "rill/tasks/language_modeling.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "rill/data/sha256.h"
#include "rill/io/json_fields.h"
#include "rill/ops/softmax.h"

namespace rill {

using nlohmann::json;

LanguageModelingConfig LanguageModelingConfig::from_json(const json& j) {
  LanguageModelingConfig c;
  JsonFields f(j, "the language modelling task");
  f.ignore("type");
  f.get("corpus", c.corpus);
  f.get("seq", c.seq);
  f.get("carry_state", c.carry_state);
  f.get("reset_every", c.reset_every);
  f.finish();
  f.check("seq", c.seq, c.seq > 0 && c.seq <= (1 << 20), "between 1 and 1048576");
  f.check("reset_every", c.reset_every, c.reset_every >= 0, "0 (never) or positive");
  return c;
}

json LanguageModelingConfig::to_json() const {
  return {{"type", "language_modeling"},
          {"corpus", corpus},
          {"seq", seq},
          {"carry_state", carry_state},
          {"reset_every", reset_every}};
}

namespace {

// A batcher over a split, refusing up front a split too short for one batch, with a message
// that names the split, its size and the limit (rather than failing at the first validation).
std::unique_ptr<data::Batcher> split_batcher(const data::PreparedCorpus& c,
                                             const std::string& split, int64_t batch, int64_t seq) {
  const data::TokenFile& tokens = c.split(split);
  const uint64_t need = static_cast<uint64_t>(batch) * static_cast<uint64_t>(seq + 1);
  RILL_CHECK(tokens.size() >= need,
             "[task] the {} split of {} has {} tokens: too few for one batch of {} lanes x {} "
             "tokens (it needs batch * (seq + 1) = {}); lower \"batch\" or \"seq\"",
             split, c.name, tokens.size(), batch, seq + 1, need);
  return std::make_unique<data::Batcher>(tokens, batch, seq);
}

std::string vocab_checksum(const data::PreparedCorpus& c) {
  if (c.kind == data::TokenizerKind::bytes) return "bytes";
  return data::sha256_file(c.dir + "/vocab.txt");
}

}  // namespace

LanguageModelingTask::LanguageModelingTask(const LanguageModelingConfig& config,
                                           const TaskContext& ctx)
    : config_(config), ctx_(ctx), corpus_(data::open_corpus(config.corpus, ctx.data_dir)) {
  RILL_CHECK(corpus_.recall_marker == 0 || corpus_.kind == data::TokenizerKind::bytes,
             "[task] corpus {} declares a recall marker but is not byte-level: the recall metric "
             "reads bytes",
             corpus_.name);
  batcher_ = split_batcher(corpus_, "train", ctx.batch, config.seq);
  split_batcher(corpus_, "valid", ctx.batch, config.seq);
  split_batcher(corpus_, "test", ctx.batch, config.seq);
}

ModelIO LanguageModelingTask::model_io() const {
  const int64_t v = corpus_.tokenizer->vocab_size();
  return {v, 0, v};
}

json LanguageModelingTask::describe() const {
  json j = config_.to_json();
  j["tokenizer"] = data::tokenizer_kind_name(corpus_.kind);
  j["vocab_size"] = corpus_.tokenizer->vocab_size();
  j["vocab_sha256"] = vocab_checksum(corpus_);
  j["trained_context"] = config_.trained_context();
  return j;
}

TaskBatch LanguageModelingTask::next_batch() {
  data::Batch b = batcher_->next();
  TaskBatch t;
  t.inputs = b.inputs;
  t.targets = b.targets;
  t.fresh_state = b.reset || config_.carry().fresh(b.segment);
  t.items = b.inputs.numel();
  return t;
}

Tensor LanguageModelingTask::loss(SequenceModel& model, const TaskBatch& batch, State* state) {
  Tensor logits = model.forward(batch.inputs, state);  // [B, T, V]
  return cross_entropy(logits.reshape({-1, logits.size(-1)}), batch.targets.reshape({-1}));
}

Metrics LanguageModelingTask::evaluate(SequenceModel& model, const std::string& split,
                                       int64_t max_batches) {
  EvaluationScope scope(model, max_batches);
  auto batcher = split_batcher(corpus_, split, ctx_.batch, config_.seq);
  int64_t segments = static_cast<int64_t>(batcher->segments_per_epoch());
  if (max_batches > 0) segments = std::min(segments, max_batches);
  const CarryPolicy carry = config_.carry();
  State state = model.init_state(ctx_.batch);
  double total = 0;
  // Recall: the per-lane name scan carried across segments, and the summed nats of the names.
  const bool recall = corpus_.recall_marker != 0;
  std::vector<uint8_t> after_marker(static_cast<size_t>(ctx_.batch), 0);
  double recall_nats = 0;
  int64_t recall_count = 0;
  for (int64_t s = 0; s < segments; ++s) {
    data::Batch b = batcher->next();
    if (carry.fresh(b.segment)) state = model.init_state(ctx_.batch);
    Tensor logits = model.forward(b.inputs, &state);
    Tensor flat = logits.reshape({-1, logits.size(-1)});
    total += cross_entropy(flat, b.targets.reshape({-1})).item<double>();
    if (recall) {
      if (b.reset) std::fill(after_marker.begin(), after_marker.end(), 0);  // the stream jumps
      RecallTargets r = recall_targets(b.inputs, b.targets, corpus_.recall_marker, after_marker);
      if (r.count > 0)  // the mean over the scored targets, back to a sum
        recall_nats += cross_entropy(flat, r.targets.reshape({-1}), kIgnoreTarget).item<double>() *
                       double(r.count);
      recall_count += r.count;
    }
  }
  Metrics m;
  m.loss = total / double(segments);
  m.primary = readable_metric_name(corpus_.kind);
  m.values = {{m.primary, readable_metric(m.loss, corpus_.kind)},
              {"tokens", double(segments * ctx_.batch * config_.seq)}};
  if (recall) {
    if (recall_count > 0)
      m.values.push_back({"recall bits/byte", recall_nats / double(recall_count) / std::log(2.0)});
    m.values.push_back({"recall tokens", double(recall_count)});
  }
  return m;
}

RecallTargets recall_targets(const Tensor& inputs, const Tensor& targets, char marker,
                             std::vector<uint8_t>& after_marker) {
  RILL_CHECK(inputs.dim() == 2 && targets.shape() == inputs.shape() &&
                 inputs.dtype() == DType::i64 && targets.dtype() == DType::i64,
             "[task] recall_targets takes i64 inputs and targets of one [B, T] shape");
  const int64_t batch = inputs.size(0), seq = inputs.size(1);
  RILL_CHECK(static_cast<int64_t>(after_marker.size()) == batch,
             "[task] recall_targets: {} carried flags for {} lanes", after_marker.size(), batch);
  const Tensor in = inputs.contiguous(), tg = targets.contiguous();
  const int64_t* x = in.data<int64_t>();
  const int64_t* y = tg.data<int64_t>();
  const int64_t mark = static_cast<unsigned char>(marker);
  auto upper = [](int64_t id) { return id >= 'A' && id <= 'Z'; };
  RecallTargets r;
  std::vector<int64_t> out(static_cast<size_t>(batch * seq), kIgnoreTarget);
  for (int64_t b = 0; b < batch; ++b) {
    bool after = after_marker[b] != 0;
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t i = b * seq + t;
      // After reading input t: in a name when it is the marker, or a letter continuing one.
      after = x[i] == mark || (after && upper(x[i]));
      if (after && upper(y[i])) {
        out[i] = y[i];
        ++r.count;
      }
    }
    after_marker[b] = after ? 1 : 0;
  }
  r.targets = Tensor::from_vector(out, {batch, seq});
  return r;
}

double readable_metric(double loss_nats, data::TokenizerKind kind) {
  return kind == data::TokenizerKind::bytes ? loss_nats / std::log(2.0) : std::exp(loss_nats);
}

const char* readable_metric_name(data::TokenizerKind kind) {
  return kind == data::TokenizerKind::bytes ? "bits/byte" : "perplexity";
}

std::unique_ptr<data::Tokenizer> trained_tokenizer(const json& task, const std::string& data_dir) {
  RILL_CHECK(task.is_object() && task.value("type", "") == "language_modeling" &&
                 task.contains("tokenizer") && task.contains("corpus"),
             "[generate] the checkpoint was not trained for language modelling (its task is {})",
             task.dump());
  const auto kind = data::parse_tokenizer_kind(task["tokenizer"].get<std::string>());
  if (kind == data::TokenizerKind::bytes) return std::make_unique<data::ByteTokenizer>();
  const std::string corpus = task["corpus"].get<std::string>();
  const std::string path = (std::filesystem::path(data_dir) / corpus / "vocab.txt").string();
  RILL_CHECK(std::filesystem::exists(path),
             "[generate] the model reads words of corpus {}, but its vocabulary {} is missing: "
             "run `rill data {}` (with --data-dir {})",
             corpus, path, corpus, data_dir);
  const std::string want = task.value("vocab_sha256", "");
  const std::string got = data::sha256_file(path);
  RILL_CHECK(got == want,
             "[generate] {} is not the vocabulary the model was trained with (SHA-256 {} at "
             "training, {} now): the corpus was prepared again differently; use the data folder "
             "it was trained on",
             path, want, got);
  return data::make_tokenizer(kind, path);
}

namespace {

const TaskRegistration kRegistered("language_modeling", [](const json& config,
                                                           const TaskContext& ctx) {
  return std::make_unique<LanguageModelingTask>(LanguageModelingConfig::from_json(config), ctx);
});

}  // namespace

}  // namespace rill
