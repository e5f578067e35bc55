// Sequence classification: one label per sequence (labelled data sets, data/labelled.h). The
// model reads the sequence step by step (x [B, T, F]) and its output at the last step, which has
// seen the whole sequence, gives the class logits [B, C]: a causal model classifies a stream as
// it ends, and the step form can classify it online. Loss: cross-entropy; metrics: accuracy and
// the loss, over a whole split.
//
// Config: {"type": "classification", "dataset": "fashion-mnist-rows"}
#pragma once
#include <memory>
#include <string>

#include "rill/data/labelled.h"
#include "rill/tasks/shuffled_batches.h"
#include "rill/tasks/task.h"

namespace rill {

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
