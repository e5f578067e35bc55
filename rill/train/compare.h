// One comparison: several run configurations trained for the same wall-clock budget on the same
// task and data, then measured side by side: parameters, state bytes per stream at 1k and 64k
// steps of context, training time and throughput, the time of one step of the step form (one
// stream: a generated token, or one input vector of a model that reads real-valued features),
// and the validation and test metrics, beside the naive forecasts a task scores (forecasting's
// last-value and seasonal-naive ones). Every family adds its configurations to this table.
//
// With a list of data sets, every config runs on each of them in turn (its task's data set
// replaced), one comparison per data set, and the table gets a data set column.
#pragma once
#include <string>
#include <vector>

#include "rill/tasks/task.h"
#include "rill/train/trainer.h"

namespace rill {

struct CompareOptions {
  double seconds = 480;  // training budget of each configuration (0: none, when steps is set)
  int64_t steps = 0;     // > 0: train this many steps (the time budget still stops a run)
  // Each run goes to out_dir/<config file stem>, or out_dir/<data set>/<config file stem>.
  std::string out_dir = "runs/compare";
  std::string data_dir;  // overrides the configs' data_dir when set
  // When not empty: every config runs on each of these data sets (its task's "dataset", or a
  // language model's "corpus", replaced). All are checked before any training: each must be
  // prepared and of the kind the configs' task reads (a series for forecasting, a labelled set
  // for classification, a corpus for language modelling).
  std::vector<std::string> datasets;
  int64_t timed_steps = 512;  // steps of the step form timed, one stream
  int step_threads = 1;       // threads while timing them
};

struct CompareRow {
  std::string dataset;  // with CompareOptions::datasets; empty otherwise
  std::string name;     // the config file's stem
  int64_t parameters = 0;
  size_t state_1k = 0, state_64k = 0;  // bytes per stream
  bool constant_state = true;
  int64_t steps = 0;
  double train_per_s = 0;  // tokens or sequences per second
  std::string unit;
  // Microseconds per step of the step form, one stream, f32 weights, after a 64-step prompt and
  // 16 warm-up steps: a token model generates greedily through its tight path; a model that
  // reads real-valued features takes its tensor step on standard-normal inputs.
  double step_us = 0;
  Metrics valid, test;
  double train_seconds = 0;  // training alone
  double seconds = 0;        // the whole row: training, the test split and the measurements
};

// A configuration and the name of its row (and of its run folder under out_dir).
struct NamedRun {
  std::string name;
  TrainConfig config;
};

// Trains and measures every config in turn (on every data set of options.datasets, data set by
// data set); events (progress, messages) pass to train().
std::vector<CompareRow> compare(const std::vector<std::string>& config_paths,
                                const CompareOptions& options, const TrainEvents& events = {});
// The same for configurations built in memory (the T-Maze table sets each one's corridor).
std::vector<CompareRow> compare_runs(std::vector<NamedRun> runs, const CompareOptions& options,
                                     const TrainEvents& events = {});
// Markdown: a row per config (with a data set column when the rows have data sets), then per
// data set a row for each naive forecast its test metrics hold ("last_value_mse" and the like),
// with the metrics those forecasts are scored by as columns of their own.
std::string compare_table(const std::vector<CompareRow>& rows);

}  // namespace rill
