// One comparison: several run configurations trained for the same wall-clock budget on the same
// task and data, then measured side by side: parameters, state bytes per stream at 1k and 64k
// tokens of context, training throughput, generation throughput (the step form, one stream),
// and the validation and test metrics. Every family adds its configurations to this table.
#pragma once
#include <string>
#include <vector>

#include "rill/tasks/task.h"
#include "rill/train/trainer.h"

namespace rill {

struct CompareOptions {
  double seconds = 480;  // training budget of each configuration (0: none, when steps is set)
  int64_t steps = 0;     // > 0: train this many steps (the time budget still stops a run)
  std::string out_dir = "runs/compare";  // each run goes to out_dir/<config file stem>
  std::string data_dir;                  // overrides the configs' data_dir when set
  int64_t gen_tokens = 512;              // tokens timed through the step form
  int gen_threads = 1;                   // threads while timing generation
};

struct CompareRow {
  std::string name;  // the config file's stem
  int64_t parameters = 0;
  size_t state_1k = 0, state_64k = 0;  // bytes per stream
  bool constant_state = true;
  int64_t steps = 0;
  double train_per_s = 0;  // tokens or sequences per second
  std::string unit;
  double gen_tokens_per_s = 0;  // 0 when the model does not read tokens
  Metrics valid, test;
  double train_seconds = 0;  // training alone
  double seconds = 0;        // the whole row: training, the test split and the measurements
};

// A configuration and the name of its row (and of its run folder under out_dir).
struct NamedRun {
  std::string name;
  TrainConfig config;
};

// Trains and measures every config in turn; events (progress, messages) pass to train().
std::vector<CompareRow> compare(const std::vector<std::string>& config_paths,
                                const CompareOptions& options, const TrainEvents& events = {});
// The same for configurations built in memory (the T-Maze table sets each one's corridor).
std::vector<CompareRow> compare_runs(std::vector<NamedRun> runs, const CompareOptions& options,
                                     const TrainEvents& events = {});
std::string compare_table(const std::vector<CompareRow>& rows);  // markdown

}  // namespace rill
