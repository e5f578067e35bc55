// Sequence classification: shuffled minibatches, last-step logits, accuracy.
#include "rill/tasks/classification.h"

#include "rill/autograd/grad_mode.h"
#include "rill/io/json_fields.h"
#include "rill/ops/index.h"
#include "rill/ops/softmax.h"

namespace rill {

using nlohmann::json;

Tensor last_step_logits(SequenceModel& model, const Tensor& x) {
  Tensor out = model.forward(x, nullptr);  // [B, T, C]
  return out.select(1, out.size(1) - 1);
}

Metrics classification_metrics(SequenceModel& model, int64_t n, int64_t batch,
                               const ExampleRange& examples) {
  RILL_CHECK(n > 0 && batch > 0, "[task] nothing to evaluate: {} examples in batches of {}", n,
             batch);
  double loss = 0;
  int64_t correct = 0;
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t len = std::min(batch, n - first);
    auto [x, y] = examples(first, len);
    Tensor logits = last_step_logits(model, x);  // [len, C]
    loss += cross_entropy(logits, y).item<double>() * double(len);
    std::vector<double> l = logits.to_vector<double>();
    std::vector<int64_t> t = y.to_vector<int64_t>();
    const int64_t c = logits.size(1);
    for (int64_t i = 0; i < len; ++i) {
      const double* row = l.data() + i * c;
      correct += (std::max_element(row, row + c) - row) == t[i];
    }
  }
  Metrics m;
  m.loss = loss / double(n);
  m.primary = "accuracy";
  m.higher_is_better = true;
  m.values = {{"accuracy", double(correct) / double(n)}, {"examples", double(n)}};
  return m;
}

ClassificationTask::ClassificationTask(data::LabelledSplits data, const TaskContext& ctx)
    : data_(std::move(data)), ctx_(ctx), batches_(data_.train.size(), ctx.batch, ctx.seed) {
  for (const char* split : {"valid", "test"})
    RILL_CHECK(data_.split(split).size() > 0, "[task] the {} split of {} is empty", split,
               data_.name);
}

ClassificationTask::ClassificationTask(const std::string& dataset, const TaskContext& ctx)
    : ClassificationTask(data::open_labelled(dataset, ctx.data_dir), ctx) {}

json ClassificationTask::describe() const {
  return {{"type", "classification"},     {"dataset", data_.name},
          {"steps", data_.steps},         {"features", data_.features},
          {"classes", data_.num_classes}, {"class_names", data_.class_names}};
}

TaskBatch ClassificationTask::next_batch() {
  Tensor idx = batches_.next();
  TaskBatch b;
  b.inputs = index_select(data_.train.x, 0, idx);   // [B, T, F]
  b.targets = index_select(data_.train.y, 0, idx);  // [B]
  b.items = ctx_.batch;
  return b;
}

Tensor ClassificationTask::loss(SequenceModel& model, const TaskBatch& batch, State*) {
  return cross_entropy(last_step_logits(model, batch.inputs), batch.targets);
}

Metrics ClassificationTask::evaluate(SequenceModel& model, const std::string& split,
                                     int64_t max_batches) {
  EvaluationScope scope(model, max_batches);
  const data::LabelledSplit& s = data_.split(split);
  int64_t n = s.size();
  if (max_batches > 0) n = std::min(n, max_batches * ctx_.batch);
  return classification_metrics(model, n, ctx_.batch, [&](int64_t first, int64_t len) {
    return std::pair{s.x.narrow(0, first, len), s.y.narrow(0, first, len)};
  });
}

namespace {

const TaskRegistration kRegistered(
    "classification", [](const json& config, const TaskContext& ctx) -> std::unique_ptr<Task> {
      // The generated T-Maze has no prepared files: its own task type builds it from these fields.
      if (config.contains("dataset") && config["dataset"] == "tmaze") {
        json t = config;
        t.erase("dataset");
        t["type"] = "tmaze";
        return make_task(t, ctx);
      }
      JsonFields f(config, "the classification task");
      f.ignore("type");
      std::string dataset;
      f.get("dataset", dataset);
      f.finish();
      RILL_CHECK(!dataset.empty(), "[config] the classification task needs a \"dataset\"");
      return std::make_unique<ClassificationTask>(dataset, ctx);
    });

}  // namespace

}  // namespace rill
