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
//
// Data-parallel training (rill/dist/): the loop runs in a group of ranks (one process by
// default). Every rank reads the whole global batch from the task (the same data position
// everywhere) and computes the gradients of its block of the batch's gradient shards; the
// reduced gradient, the clipping and the optimiser step are identical on every rank. Rank 0
// alone writes files (config.json, metrics.jsonl, curves.svg, the checkpoint, which holds the
// whole carried state gathered from the ranks, in the format of a one-process run) and reports
// messages; it alone validates while the others wait. Its clock decides the time limit and its
// should_stop the interruption, for every rank. A checkpoint resumes on any number of ranks.
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
  bool interrupted = false;      // stopped by should_stop (a checkpoint was written)
  bool out_of_time = false;      // stopped by the time limit before the horizon
  int ranks = 1;                 // of the group it trained in
  int64_t grad_shards = 1;       // as resolved (see TrainConfig::grad_shards)
  double reduce_s = 0;           // seconds this process spent reducing gradients over ranks
  double reduce_s_per_step = 0;  // the same per step done in this process (0: none reduced)
};

namespace dist {
class Communicator;
}

// comm: the group to train in; null is the one-process group.
TrainResult train(const TrainConfig& config, bool resume, const TrainEvents& events = {},
                  dist::Communicator* comm = nullptr);

// The task and model of a run, built as train() builds them (for tools and tests).
struct RunParts {
  std::unique_ptr<Task> task;
  std::shared_ptr<SequenceModel> model;
};
RunParts build_run(const TrainConfig& config);

}  // namespace rill
