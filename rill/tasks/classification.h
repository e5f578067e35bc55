// Sequence classification: one label per sequence (labelled data sets, data/labelled.h). The
// model reads the sequence step by step (x [B, T, F]) and its output at the last step, which has
// seen the whole sequence, gives the class logits [B, C]: a causal model classifies a stream as
// it ends, and the step form can classify it online. Loss: cross-entropy; metrics: accuracy and
// the loss, over a whole split.
//
// Config: {"type": "classification", "dataset": "fashion-mnist-rows"}
// The generated T-Maze is also reachable here: {"type": "classification", "dataset": "tmaze",
// "corridor": 100} builds the "tmaze" task (tasks/tmaze.h) from the other fields.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "rill/data/labelled.h"
#include "rill/tasks/shuffled_batches.h"
#include "rill/tasks/task.h"

namespace rill {

// The class logits [B, C] of sequences x [B, T, F]: the model's outputs at the last step.
Tensor last_step_logits(SequenceModel& model, const Tensor& x);

// Accuracy, and the mean cross-entropy as the loss, of n examples read `batch` at a time:
// examples(first, len) gives their inputs [len, T, F] and labels i64 [len]. Shared by the tasks
// that classify whole sequences, whether their splits are in memory or generated.
using ExampleRange = std::function<std::pair<Tensor, Tensor>(int64_t first, int64_t len)>;
Metrics classification_metrics(SequenceModel& model, int64_t n, int64_t batch,
                               const ExampleRange& examples);

class ClassificationTask : public Task {
 public:
  ClassificationTask(const std::string& dataset, const TaskContext& ctx);
  // From data already in memory (tests make their own).
  ClassificationTask(data::LabelledSplits data, const TaskContext& ctx);

  std::string type() const override { return "classification"; }
  ModelIO model_io() const override { return {0, data_.features, data_.num_classes}; }
  nlohmann::json describe() const override;
  std::string unit() const override { return "sequences"; }
  TaskBatch next_batch() override;
  uint64_t position() const override { return batches_.position(); }
  void set_position(uint64_t position) override { batches_.set_position(position); }
  Tensor loss(SequenceModel& model, const TaskBatch& batch, State* state) override;
  Metrics evaluate(SequenceModel& model, const std::string& split, int64_t max_batches) override;

 private:
  data::LabelledSplits data_;
  TaskContext ctx_;
  ShuffledBatches batches_;
};

}  // namespace rill
