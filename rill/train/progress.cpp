#include "rill/train/progress.h"

#include <unistd.h>

#include <cstdio>

#include "rill/core/error.h"

namespace rill {

Progress::Progress(int64_t total_steps, int64_t first_step)
    : total_(total_steps),
      first_(first_step),
      tty_(::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t step, double loss, double lr, int64_t tokens) {
  const auto now = std::chrono::steady_clock::now();
  const double el = elapsed_s();
  tokens_per_s_ = el > 0 ? tokens / el : 0;
  const double done = double(step - first_), left = double(total_ - step);
  const double eta = done > 0 ? el / done * left : 0;
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (tty_) {
    if (since < 0.2 && step != total_) return;
    const int width = 30;
    const int filled = total_ > 0 ? int(width * double(step) / double(total_)) : 0;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f lr %.2e %.0f tok/s ETA %.0fs   ", bar.c_str(),
                 (long long)step, (long long)total_, loss, lr, tokens_per_s_, eta);
    bar_shown_ = true;
  } else {
    if (since < 10 && step != total_ && step != first_ + 1) return;
    std::fprintf(stderr, "step %lld/%lld loss %.4f lr %.2e %.0f tok/s elapsed %.0fs ETA %.0fs\n",
                 (long long)step, (long long)total_, loss, lr, tokens_per_s_, el, eta);
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
