// The T-Maze memory task (data/tmaze.h): classify an episode by the cue it showed at t = 0, at
// its last step (the junction), corridor - 1 steps later. Success rate = test accuracy.
// Episodes are generated, never stored: training reads a fresh stream of episodes (batch p holds
// episodes p*B .. p*B+B-1 of the train stream, so a checkpoint resumes by position alone, and
// no model can learn a fixed set's distractors by heart); valid and test are fixed sets of the
// first episodes of their own streams, the same for every model and run seed.
//
// Config: {"type": "tmaze", "corridor": 100, "valid_episodes": 256, "test_episodes": 1000,
//          "seed": 1}
//   corridor        episode length N, 10 .. 1000 (the cue is N - 1 steps before the decision)
//   seed            the data seed (not the run's): it fixes the three episode streams
// Also reachable as {"type": "classification", "dataset": "tmaze", ...}.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

#include "rill/tasks/task.h"

namespace rill {

struct TMazeConfig {
  int64_t corridor = 100;
  int64_t valid_episodes = 256, test_episodes = 1000;
  uint64_t seed = 1;
  static TMazeConfig from_json(const nlohmann::json& j);  // strict; refuses bad values by name
  nlohmann::json to_json() const;
};

class TMazeTask : public Task {
 public:
  TMazeTask(const TMazeConfig& config, const TaskContext& ctx);

  std::string type() const override { return "tmaze"; }
  ModelIO model_io() const override;
  nlohmann::json describe() const override;
  std::string unit() const override { return "sequences"; }
  TaskBatch next_batch() override;
  uint64_t position() const override { return position_; }
  void set_position(uint64_t position) override { position_ = position; }
  Tensor loss(SequenceModel& model, const TaskBatch& batch, State* state) override;
  // "train" reads the first valid_episodes of the training stream.
  Metrics evaluate(SequenceModel& model, const std::string& split, int64_t max_batches) override;

  const TMazeConfig& config() const { return config_; }

 private:
  TMazeConfig config_;
  TaskContext ctx_;
  uint64_t position_ = 0;
};

}  // namespace rill
