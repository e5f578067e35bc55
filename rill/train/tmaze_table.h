// The T-Maze success-rate table (relit.md section 2): every model config trained on the T-Maze
// task (tasks/tmaze.h) at every corridor length within the same budget, then judged by its
// success rate, the fraction of test episodes decided correctly (chance is 0.5). Each corridor
// is one comparison (compare.h) of the configs; the table has a row per config and a column per
// corridor, with the steps and seconds each cell took.
//
// A config is any run config: its model and optimiser are kept; a "tmaze" task (or the
// classification spelling) keeps its episode counts and data seed, and the corridor is set per
// column; any other task is replaced by the T-Maze task with its defaults.
#pragma once
#include <string>
#include <vector>

#include "rill/train/compare.h"

namespace rill {

struct TMazeTableOptions {
  std::vector<int64_t> corridors = {10, 30, 100, 300, 1000};
  // Budget per cell (seconds and/or steps), out_dir (cell runs go to out_dir/corridor-N/<name>),
  // data_dir.
  CompareOptions compare;
  int64_t valid_episodes = 0, test_episodes = 0;  // > 0: override the configs' counts
};

struct TMazeCell {
  std::string name;  // the config file's stem
  int64_t corridor = 0;
  double success = 0;  // test accuracy
  int64_t test_episodes = 0;
  int64_t steps = 0;
  double train_seconds = 0, seconds = 0;  // training; the whole cell (with the test split)
};

std::vector<TMazeCell> tmaze_table(const std::vector<std::string>& config_paths,
                                   const TMazeTableOptions& options,
                                   const TrainEvents& events = {});
// Markdown: success rate per config and corridor, then steps and seconds per cell.
std::string tmaze_markdown(const std::vector<TMazeCell>& cells);

}  // namespace rill
