// Grad mode: ops record a tape only while it is on (the default) and an input requires grad.
#pragma once

namespace rill {

struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool on);
};

// Turns recording off for a scope (streaming inference, optimiser steps, backward itself).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace rill
