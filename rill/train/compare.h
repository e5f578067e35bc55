// One comparison: several run configurations trained for the same wall-clock budget on the same
// task and data, then measured side by side: parameters, state bytes per stream at 1k and 64k
// steps of context, training time and throughput, the time of one step of the step form (one
// stream: a generated token, or one input vector of a model that reads real-valued features),
// and the validation and test metrics, beside the naive forecasts a task scores (forecasting's
// last-value and seasonal-naive ones). Every family adds its configurations to this table.
//
// With a list of data sets, every config runs on each of them in turn (its task's data set
// replaced), one comparison per data set, and the table gets a data set column. With a list of
// seeds, every config (on every data set) runs once per seed, and the table gives each metric's
// mean and sample standard deviation over the seeds, then every seed's run on a row of its own.
#pragma once
#include <string>
#include <vector>

#include "rill/tasks/task.h"
#include "rill/train/trainer.h"

namespace rill {

struct CompareOptions {
  double seconds = 480;  // training budget of each configuration (0: none, when steps is set)
  int64_t steps = 0;     // > 0: train this many steps (the time budget still stops a run)
  // Each run goes to out_dir/<config file stem>, or out_dir/<data set>/<config file stem>, with
  // seeds to .../<config file stem>/seed<N>.
  std::string out_dir = "runs/compare";
  std::string data_dir;  // overrides the configs' data_dir when set
  // When not empty: every config runs on each of these data sets (its task's "dataset", or a
  // language model's "corpus", replaced). All are checked before any training: each must be
  // prepared and of the kind the configs' task reads (a series for forecasting, a labelled set
  // for classification, a corpus for language modelling).
  std::vector<std::string> datasets;
  // When not empty: every config (on every data set) runs once per seed, its run config's "seed"
  // replaced. Empty: each config runs once, with its own seed.
  std::vector<uint64_t> seeds;
  // Batches of the test split evaluated per run (0: all of it). Large corpora (go-src's test
  // split is 3 M bytes) make a whole-split evaluation cost more than a short training run.
  int64_t test_batches = 0;
  int64_t timed_steps = 512;  // steps of the step form timed, one stream
  int step_threads = 1;       // threads while timing them
};

struct CompareRow {
  std::string dataset;  // with CompareOptions::datasets; empty otherwise
  std::string name;     // the config file's stem
  uint64_t seed = 0;    // the run's seed: one of CompareOptions::seeds, or its config's own
  int64_t parameters = 0;
  // Forward FLOPs per token (the model's cost model, SequenceModel::info) with the context of
  // one training segment: the length of a training batch's sequences, flops_context (a language
  // model's seq, a forecaster's input window, a classifier's sequence length).
  double flops_per_token = 0;
  int64_t flops_context = 0;
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

// "1,2,3" (the command line's --seeds) as seeds: an empty item, anything but a whole number from
// 0, and a seed listed twice are refused by name.
std::vector<uint64_t> parse_seeds(const std::string& text);

// Trains and measures every config in turn (on every data set of options.datasets, data set by
// data set); events (progress, messages) pass to train().
std::vector<CompareRow> compare(const std::vector<std::string>& config_paths,
                                const CompareOptions& options, const TrainEvents& events = {});
// The same for configurations built in memory (the T-Maze table sets each one's corridor).
std::vector<CompareRow> compare_runs(std::vector<NamedRun> runs, const CompareOptions& options,
                                     const TrainEvents& events = {});
// Markdown: a row per config (with a data set column when the rows have data sets), then per
// data set a row for each naive forecast its test metrics hold ("last_value_mse" and the like).
// The columns: the validation headline, and every test metric any row reports (blank, "-",
// where a row has none), less the naive forecasts' own (their rows) and the sizes of the split
// ("examples", "windows", "tokens", "recall tokens"). When a (data set, config) has several rows
// (seeds), its row gives the mean ± sample standard deviation over them of every measured number
// (metrics, steps, training time, throughput, step time) and a column of the seed count, and a
// second table under the first lists every seed's run with its raw values.
std::string compare_table(const std::vector<CompareRow>& rows);

}  // namespace rill
