// The command line's progress display for training: a one-line bar with the loss, throughput
// and ETA when stderr is a terminal, plain log lines otherwise (so CI logs and pipes stay
// readable). It is fed by the trainer's step events.
#pragma once
#include <chrono>
#include <string>

#include "rill/train/trainer.h"

namespace rill {

class Progress {
 public:
  Progress();
  void update(const StepEvent& e);
  void message(const std::string& line);  // a line that does not disturb the bar
  void finish();

 private:
  bool tty_;
  bool bar_shown_ = false;
  int64_t first_step_ = -1;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace rill
