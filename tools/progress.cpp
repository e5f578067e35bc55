// Progress bar and log lines for `rill train`.
#include "tools/progress.h"

#include <unistd.h>

#include <cstdio>

namespace rill {

Progress::Progress()
    : tty_(::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::update(const StepEvent& e) {
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) first_step_ = e.step - 1, start_ = now;
  const double here = std::chrono::duration<double>(now - start_).count();
  const double done = double(e.step - first_step_), left = double(e.horizon - e.step);
  const double eta = done > 0 ? here / done * left : 0;
  const double since = std::chrono::duration<double>(now - last_print_).count();
  const char* unit = e.unit == "tokens" ? "tok" : "seq";
  if (tty_) {
    if (since < 0.2 && e.step != e.horizon) return;
    const int width = 30;
    const int filled = e.horizon > 0 ? int(width * double(e.step) / double(e.horizon)) : 0;
    std::string bar(std::min(filled, width), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f lr %.2e %.0f %s/s ETA %.0fs   ", bar.c_str(),
                 (long long)e.step, (long long)e.horizon, e.loss, e.lr, e.items_per_s, unit, eta);
    bar_shown_ = true;
  } else {
    if (since < 10 && e.step != e.horizon && e.step != first_step_ + 1) return;
    std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e %.0f %s/s elapsed %.0fs ETA %.0fs\n",
                 (long long)e.step, (long long)e.horizon, e.loss, e.lr, e.items_per_s, unit,
                 e.elapsed_s, eta);
  }
  std::fflush(stderr);
  last_print_ = now;
}

void Progress::message(const std::string& line) {
  if (bar_shown_) std::fprintf(stderr, "\n");
  bar_shown_ = false;
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (bar_shown_) std::fprintf(stderr, "\n");
  bar_shown_ = false;
}

}  // namespace rill
