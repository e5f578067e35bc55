// The training loop over any (task, model) pair: batches from the task, the recurrent state
// carried across batches when the task asks (truncated backpropagation through time, detached
// at every step), AdamW with warm-up and cosine decay, gradient clipping, periodic validation, a
// JSONL metrics log and an SVG plot, checkpoints every N steps, on request (Ctrl-C) and at the
// time limit, and exact resume: a run interrupted at any step and resumed continues bitwise as
// if never interrupted (weights, optimiser state, carried state, data position, RNG states,
// learning-rate horizon and training time are all in the checkpoint).
// Files in out_dir: config.json, checkpoint.safetensors, metrics.jsonl, curves.svg.
//
// The loop reports through callbacks (TrainEvents): the command line draws its progress bar and
// turns Ctrl-C into should_stop; tests inject a clock and stop at chosen steps.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "rill/tasks/task.h"
#include "rill/train/train_config.h"

namespace rill {

struct StepEvent {
  int64_t step = 0;     // steps done, 1-based
  int64_t horizon = 0;  // the step the schedule ends at (fitted to a time limit)
  double loss = 0, lr = 0;
  double elapsed_s = 0;    // training seconds of the run, across resumes
  double items_per_s = 0;  // in this process
  std::string unit;        // "tokens" or "sequences"
};

struct TrainEvents {
  std::function<void(const StepEvent&)> on_step;
  std::function<void(const std::string&)> on_message;
  std::function<bool()> should_stop;  // polled after every step: true saves and stops
  std::function<double()> clock;      // monotonic seconds; a steady clock when empty
};

struct TrainResult {
  int64_t steps = 0;       // optimiser steps done in total
  double train_loss = 0;   // mean of the last logged window
  Metrics valid;           // the last validation
  double seconds = 0;      // training seconds of the run, across resumes
  double items_per_s = 0;  // in this process
  std::string unit;
  bool interrupted = false;  // stopped by should_stop (a checkpoint was written)
  bool out_of_time = false;  // stopped by the time limit before the horizon
};

TrainResult train(const TrainConfig& config, bool resume, const TrainEvents& events = {});

// The task and model of a run, built as train() builds them (for tools and tests).
struct RunParts {
  std::unique_ptr<Task> task;
  std::shared_ptr<SequenceModel> model;
};
RunParts build_run(const TrainConfig& config);

}  // namespace rill
