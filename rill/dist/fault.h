// What a rank does when the job fails around it, so that no rank hangs and every rank says what
// happened. When a rank dies, Open MPI's mpirun sends SIGTERM to the others and ends the job; a
// rank then prints one line (its rank, the step, the call it was in) before it exits. A rank
// that is alive but stuck (a frozen machine, a cut network) would leave the others blocked in a
// collective forever: a watchdog thread ends a rank that has waited in one call longer than the
// timeout, with a line that says so, and mpirun then ends the job.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace rill::dist {

class FaultGuard {
 public:
  // Installs the SIGTERM handler; with timeout_s > 0 also starts the watchdog. One at a time.
  FaultGuard(int rank, int size, double timeout_s);
  ~FaultGuard();
  FaultGuard(const FaultGuard&) = delete;
  FaultGuard& operator=(const FaultGuard&) = delete;

  void note_step(int64_t step);

  // Marks a blocking collective call for the watchdog and for the SIGTERM line.
  class Waiting {
   public:
    Waiting(FaultGuard* guard, const char* op);
    ~Waiting();

   private:
    FaultGuard* guard_;
  };

 private:
  void watch();
  double timeout_s_;
  std::thread watchdog_;
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

}  // namespace rill::dist
