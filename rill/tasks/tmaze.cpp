// The T-Maze task: generated episodes, last-step classification, success rate.
#include "rill/tasks/tmaze.h"

#include "rill/data/tmaze.h"
#include "rill/io/json_fields.h"
#include "rill/ops/softmax.h"
#include "rill/tasks/classification.h"

namespace rill {

using nlohmann::json;

TMazeConfig TMazeConfig::from_json(const json& j) {
  TMazeConfig c;
  JsonFields f(j, "the T-Maze task");
  f.ignore("type");
  f.get("corridor", c.corridor);
  f.get("valid_episodes", c.valid_episodes);
  f.get("test_episodes", c.test_episodes);
  f.get("seed", c.seed);
  f.finish();
  data::check_tmaze_corridor(c.corridor);
  f.check("valid_episodes", c.valid_episodes, c.valid_episodes > 0 && c.valid_episodes <= 1000000,
          "between 1 and 1,000,000");
  f.check("test_episodes", c.test_episodes, c.test_episodes > 0 && c.test_episodes <= 1000000,
          "between 1 and 1,000,000");
  return c;
}

json TMazeConfig::to_json() const {
  return {{"type", "tmaze"},
          {"corridor", corridor},
          {"valid_episodes", valid_episodes},
          {"test_episodes", test_episodes},
          {"seed", seed}};
}

TMazeTask::TMazeTask(const TMazeConfig& config, const TaskContext& ctx)
    : config_(config), ctx_(ctx) {
  data::check_tmaze_corridor(config.corridor);
}

ModelIO TMazeTask::model_io() const { return {0, data::kTMazeFeatures, data::kTMazeClasses}; }

json TMazeTask::describe() const {
  json d = config_.to_json();
  d["steps"] = config_.corridor;
  d["features"] = data::kTMazeFeatures;
  d["classes"] = data::kTMazeClasses;
  d["class_names"] = {"up", "down"};
  return d;
}

TaskBatch TMazeTask::next_batch() {
  const data::LabelledSplit s =
      data::tmaze_episodes(config_.corridor, data::tmaze_stream_key(config_.seed, "train"),
                           int64_t(position_) * ctx_.batch, ctx_.batch);
  ++position_;
  TaskBatch b;
  b.inputs = s.x;
  b.targets = s.y;
  b.items = ctx_.batch;
  return b;
}

Tensor TMazeTask::loss(SequenceModel& model, const TaskBatch& batch, State*) {
  return cross_entropy(last_step_logits(model, batch.inputs), batch.targets);
}

Metrics TMazeTask::evaluate(SequenceModel& model, const std::string& split, int64_t max_batches) {
  EvaluationScope scope(model, max_batches);
  const uint64_t key = data::tmaze_stream_key(config_.seed, split);  // refuses unknown splits
  int64_t n = split == "test" ? config_.test_episodes : config_.valid_episodes;
  if (max_batches > 0) n = std::min(n, max_batches * ctx_.batch);
  return classification_metrics(model, n, ctx_.batch, [&](int64_t first, int64_t len) {
    data::LabelledSplit s = data::tmaze_episodes(config_.corridor, key, first, len);
    return std::pair{s.x, s.y};
  });
}

namespace {

const TaskRegistration kRegistered("tmaze", [](const json& config, const TaskContext& ctx) {
  return std::make_unique<TMazeTask>(TMazeConfig::from_json(config), ctx);
});

}  // namespace

}  // namespace rill
