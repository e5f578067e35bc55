// The command line's progress display for training: a one-line bar with the loss (or, for an
// agent, the mean return and episodes/s), throughput and ETA when stderr is a terminal, plain
// log lines otherwise (so CI logs and pipes stay readable). It is fed by the trainers' events.
#pragma once
#include <chrono>
#include <string>

#include "rill/rl/rl_trainer.h"
#include "rill/train/trainer.h"

namespace rill {

class Progress {
 public:
  Progress();
  void update(const StepEvent& e);
  void update(const rl::RlUpdateEvent& e);
  void message(const std::string& line);  // a line that does not disturb the bar
  void finish();

 private:
  // done of total units; fields: what follows the count; elapsed: training seconds so far.
  void draw(int64_t done, int64_t total, const std::string& fields, double elapsed);

  bool tty_;
  bool bar_shown_ = false, started_ = false;
  int64_t first_ = -1, last_done_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace rill
