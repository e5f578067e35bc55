// A low-overhead profiler of where a training step or a generated token spends its time: scopes
// named by what runs inside them (a kernel, a backward node, a GEMM) add their wall time to a
// table, self time (children excluded) and calls. Off unless enabled (`rill train --profile`,
// or RILL_PROFILE=1): a disabled scope costs one branch. Scopes are recorded outside OpenMP
// parallel regions only: a kernel's workers are part of the time of the scope around it.
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace rill {

struct ProfileEntry {
  std::string name;
  double self_s = 0, total_s = 0;  // without and with nested scopes
  int64_t calls = 0;
};

class Profiler {
 public:
  static bool enabled() { return enabled_; }
  static void enable(bool on);
  static void reset();
  // Entries by self time, largest first.
  static std::vector<ProfileEntry> report();
  // A markdown table of the report, with each entry's share of `wall_s` (0: of the sum).
  static std::string table(double wall_s = 0, size_t top = 30);

 private:
  friend class ProfileScope;
  static bool enabled_;
};

class ProfileScope {
 public:
  explicit ProfileScope(const char* name) : name_(name) {
    if (Profiler::enabled()) start();
  }
  ~ProfileScope() {
    if (active_) stop();
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  void start();
  void stop();
  const char* name_;
  bool active_ = false;
  double children_ = 0;
  ProfileScope* parent_ = nullptr;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace rill
