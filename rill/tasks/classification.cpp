// Sequence classification: shuffled minibatches, last-step logits, accuracy.
#include "rill/tasks/classification.h"

#include "rill/autograd/grad_mode.h"
#include "rill/io/json_fields.h"
#include "rill/ops/index.h"
#include "rill/ops/softmax.h"

namespace rill {

using nlohmann::json;

namespace {

// The class logits [B, C]: the model's outputs at the last step.
Tensor last_step(SequenceModel& model, const Tensor& x) {
  Tensor out = model.forward(x, nullptr);  // [B, T, C]
  return out.select(1, out.size(1) - 1);
}

}  // namespace

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
  return cross_entropy(last_step(model, batch.inputs), batch.targets);
}

Metrics ClassificationTask::evaluate(SequenceModel& model, const std::string& split,
                                     int64_t max_batches) {
  EvaluationScope scope(model, max_batches);
  const data::LabelledSplit& s = data_.split(split);
  int64_t n = s.size();
  if (max_batches > 0) n = std::min(n, max_batches * ctx_.batch);
  double loss = 0;
  int64_t correct = 0;
  for (int64_t first = 0; first < n; first += ctx_.batch) {
    const int64_t len = std::min(ctx_.batch, n - first);
    Tensor logits = last_step(model, s.x.narrow(0, first, len));  // [len, C]
    Tensor y = s.y.narrow(0, first, len);
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

namespace {

const TaskRegistration kRegistered("classification", [](const json& config,
                                                        const TaskContext& ctx) {
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
