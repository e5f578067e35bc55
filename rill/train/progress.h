// Progress reporting: a one-line bar with tokens/s and ETA when stderr is a terminal, plain
// log lines otherwise (so CI logs and pipes stay readable).
#pragma once
#include <chrono>
#include <string>

namespace rill {

class Progress {
 public:
  Progress(int64_t total_steps, int64_t first_step);
  // Reports step (1-based count of steps done), the loss and tokens processed so far.
  void update(int64_t step, double loss, double lr, int64_t tokens);
  void set_total(int64_t total_steps) { total_ = total_steps; }
  void message(const std::string& line);  // a line that does not disturb the bar
  void finish();
  double elapsed_s() const;
  double tokens_per_s() const { return tokens_per_s_; }

 private:
  int64_t total_, first_;
  bool tty_;
  bool bar_shown_ = false;
  double tokens_per_s_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace rill
