// The SIGTERM line and the watchdog (fault.h). The handler may only call async-signal-safe
// functions, so everything it prints is kept in plain atomics and formatted by hand.
#include "rill/dist/fault.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rill/core/error.h"

namespace rill::dist {

namespace {

std::atomic<int> g_rank{0}, g_size{1};
std::atomic<int64_t> g_step{0};
std::atomic<const char*> g_op{nullptr};  // the collective being waited in, or null
std::atomic<int64_t> g_op_since_ms{0};   // when it began (steady clock)
std::atomic<bool> g_installed{false};
struct sigaction g_previous_term;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Appends text or a number to a fixed buffer (no allocation: safe in a signal handler).
struct Line {
  char buf[512];
  size_t n = 0;
  void add(const char* s) {
    while (*s && n + 1 < sizeof buf) buf[n++] = *s++;
  }
  void add(int64_t v) {
    char digits[24];
    int d = 0;
    const bool negative = v < 0;
    uint64_t u = negative ? uint64_t(-(v + 1)) + 1 : uint64_t(v);
    do digits[d++] = char('0' + u % 10), u /= 10;
    while (u);
    if (negative) add("-");
    while (d > 0 && n + 1 < sizeof buf) buf[n++] = digits[--d];
  }
  void write_out() {
    const ssize_t ignored = ::write(STDERR_FILENO, buf, n);
    (void)ignored;
  }
};

void rank_prefix(Line& l) {
  l.add("rill: rank ");
  l.add(int64_t(g_rank.load()));
  l.add(" of ");
  l.add(int64_t(g_size.load()));
  l.add(": ");
}

void on_sigterm(int sig) {
  Line l;
  rank_prefix(l);
  l.add("ended by SIGTERM after training step ");
  l.add(g_step.load());
  if (const char* op = g_op.load()) {
    l.add(" while waiting in ");
    l.add(op);
  }
  l.add(
      ": mpirun ends every rank when one rank fails or the job is stopped (its own message "
      "names the rank); the last checkpoint written is intact\n");
  l.write_out();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

FaultGuard::FaultGuard(int rank, int size, double timeout_s) : timeout_s_(timeout_s) {
  RILL_CHECK(!g_installed.exchange(true), "[dist] a FaultGuard is already installed");
  g_rank = rank, g_size = size, g_step = 0, g_op = nullptr;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, &g_previous_term);
  if (timeout_s_ > 0) watchdog_ = std::thread([this] { watch(); });
}

FaultGuard::~FaultGuard() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  ::sigaction(SIGTERM, &g_previous_term, nullptr);
  g_installed = false;
}

void FaultGuard::note_step(int64_t step) { g_step = step; }

FaultGuard::Waiting::Waiting(FaultGuard* guard, const char* op) : guard_(guard) {
  if (!guard_) return;
  g_op_since_ms = now_ms();
  g_op = op;
}

FaultGuard::Waiting::~Waiting() {
  if (guard_) g_op = nullptr;
}

void FaultGuard::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_; })) {
    const char* op = g_op.load();
    if (!op) continue;
    const double waited = double(now_ms() - g_op_since_ms.load()) / 1000.0;
    if (waited <= timeout_s_) continue;
    Line l;
    rank_prefix(l);
    l.add("waited ");
    l.add(int64_t(waited));
    l.add(" s in ");
    l.add(op);
    l.add(" after training step ");
    l.add(g_step.load());
    l.add(
        ": another rank is stuck or the network is down; ending this rank so that mpirun "
        "ends the job (the limit is --dist-timeout)\n");
    l.write_out();
    std::_Exit(1);
  }
}

}  // namespace rill::dist
