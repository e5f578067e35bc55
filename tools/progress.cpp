// Progress bar and log lines for `rill train` and `rill rl`.
#include "tools/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace rill {

Progress::Progress()
    : tty_(::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::draw(int64_t done, int64_t total, const std::string& fields, double elapsed) {
  const auto now = std::chrono::steady_clock::now();
  if (done < last_done_) started_ = false, first_ = -1;  // a new run (a sweep's next cell)
  last_done_ = done;
  if (!started_) started_ = true, start_ = now, first_ = first_ < 0 ? done : first_;
  const double here = std::chrono::duration<double>(now - start_).count();
  const double progressed = double(done - first_), left = double(total - done);
  const double eta = progressed > 0 ? here / progressed * left : 0;
  const double since = std::chrono::duration<double>(now - last_print_).count();
  const bool last = done >= total;
  if (tty_) {
    if (since < 0.2 && !last) return;
    const int width = 30;
    const int filled = total > 0 ? int(width * double(done) / double(total)) : 0;
    std::string bar(std::min(filled, width), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %lld/%lld %s ETA %.0fs   ", bar.c_str(), (long long)done,
                 (long long)total, fields.c_str(), eta);
    bar_shown_ = true;
  } else {
    if (since < 10 && !last && done != first_) return;
    std::fprintf(stderr, "%lld/%lld %s elapsed %.0fs ETA %.0fs\n", (long long)done,
                 (long long)total, fields.c_str(), elapsed, eta);
  }
  std::fflush(stderr);
  last_print_ = now;
}

void Progress::update(const StepEvent& e) {
  const char* unit = e.unit == "tokens" ? "tok" : "seq";
  // The first step counts from the one before it, so the ETA has a rate at once.
  if (!started_) first_ = e.step - 1;
  draw(e.step, e.horizon,
       fmt::format("steps loss {:.4f} lr {:.2e} {:.0f} {}/s", e.loss, e.lr, e.items_per_s, unit),
       e.elapsed_s);
}

void Progress::update(const rl::RlUpdateEvent& e) {
  std::string fields = fmt::format("env steps, return {:.3f}", e.mean_return);
  if (e.has_success) fields += fmt::format(" success {:.2f}", e.success);
  fields += fmt::format(" ({} episodes) {:.1f} episodes/s {:.0f} steps/s", e.episodes,
                        e.episodes_per_s, e.env_steps_per_s);
  draw(e.env_steps, e.env_steps_target, fields, e.elapsed_s);
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
