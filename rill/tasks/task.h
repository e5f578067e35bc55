// Task: what a model is trained on and judged by, seen by the trainer through this interface
// only. A task owns its data (opened from data_dir), hands out training batches in a
// deterministic order that a checkpoint can resume (position / set_position), computes the loss
// of a batch, and evaluates a split with its metrics. It also says what the model reads and
// writes (ModelIO), so the same model config serves language modelling, classification and
// forecasting. Tasks register themselves by type name, like mixers and models.
//
// The config is the "task" object of a run:
//   {"type": "language_modeling", "corpus": "bible-kjv", "seq": 128, ...}
//   {"type": "classification", "dataset": "fashion-mnist-rows"}
//   {"type": "forecasting", "dataset": "sunspots", "input_len": 96, "horizon": 24}
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rill/models/sequence_model.h"

namespace rill {

struct TaskBatch {
  Tensor inputs;   // [B, T] i64 token ids or [B, T, F] real features
  Tensor targets;  // whatever the task's loss reads
  // Start this batch from a fresh model state (always, for tasks that carry none).
  bool fresh_state = true;
  int64_t items = 0;  // tokens or sequences in the batch, for throughput
};

// Metrics of one evaluation: the loss the task trains on, and named metrics with one headline.
struct Metrics {
  double loss = 0;
  std::vector<std::pair<std::string, double>> values;  // e.g. {"bits/byte", 2.1}
  std::string primary;                                 // the headline metric's name
  bool higher_is_better = false;                       // of the headline
  double value(const std::string& name) const;         // errors name what exists
  const double* find(const std::string& name) const;   // nullptr when absent
  double headline() const { return value(primary); }
  nlohmann::json to_json() const;
};

// What every task is built from beside its own config.
struct TaskContext {
  std::string data_dir = "data";
  int64_t batch = 16;  // training batch size (lanes, sequences or windows)
  uint64_t seed = 1;   // shuffles and sampling
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string type() const = 0;
  virtual ModelIO model_io() const = 0;
  // What a checkpoint records of the task, for evaluation and generation later (the config
  // plus facts such as the tokenizer and its vocabulary's checksum).
  virtual nlohmann::json describe() const = 0;
  // "tokens" or "sequences": the unit of TaskBatch::items, for throughput.
  virtual std::string unit() const = 0;
  // The metric a person reads for a loss value, for logs and plots (bits/byte for a byte-level
  // language model); the loss itself by default.
  virtual std::pair<std::string, double> loss_metric(double loss) const { return {"loss", loss}; }

  // Training batches in a fixed order; position() counts batches handed out.
  virtual TaskBatch next_batch() = 0;
  virtual uint64_t position() const = 0;
  virtual void set_position(uint64_t position) = 0;
  // True when the trainer should carry the model state from one batch to the next (truncated
  // backpropagation through time over a stream), starting afresh where a batch says so.
  virtual bool carries_state() const { return false; }

  // Mean loss of a batch (a scalar with a tape in grad mode); state is the carried state or
  // null.
  virtual Tensor loss(SequenceModel& model, const TaskBatch& batch, State* state) = 0;
  // Metrics over a split ("valid" or "test"; "train" where it makes sense), using at most
  // max_batches batches (0: the whole split). No tape.
  virtual Metrics evaluate(SequenceModel& model, const std::string& split, int64_t max_batches) = 0;
};

// What every evaluate() does first: refuses a negative batch cap, turns the tape off and puts
// the model in eval mode (no dropout) for its lifetime, then restores the mode it found.
class EvaluationScope {
 public:
  EvaluationScope(SequenceModel& model, int64_t max_batches);
  ~EvaluationScope() { model_.train(was_training_); }
  EvaluationScope(const EvaluationScope&) = delete;
  EvaluationScope& operator=(const EvaluationScope&) = delete;

 private:
  NoGradGuard no_grad_;
  SequenceModel& model_;
  bool was_training_;
};

using TaskFactory =
    std::function<std::unique_ptr<Task>(const nlohmann::json& config, const TaskContext& ctx)>;
std::unique_ptr<Task> make_task(const nlohmann::json& config, const TaskContext& ctx);
std::vector<std::string> registered_tasks();

struct TaskRegistration {
  TaskRegistration(const std::string& type, TaskFactory factory);
};

}  // namespace rill
