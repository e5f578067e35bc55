// Denormal floats flushed to zero (x86 MXCSR FTZ and DAZ) on the calling thread and on every
// thread of the OpenMP pool, for as long as a guard lives.
//
// Why: an operand or result below 2^-126 (f32) costs an x86 core a microcode assist of ~100
// cycles. Training produces them (ELU and exp tails, decayed states, Adam's moments of quiet
// parameters), and they accumulate: measured here, the pure linear-attention config
// (configs/linear.json, ELU+1 features) slowed from 8,000 to 4,800 tokens/s over 1,100 steps, and
// a profile of the slow steps showed oneDNN's sgemm at a third of its rate. TensorFlow and XLA
// run with FTZ/DAZ on for the same reason. Values that small carry nothing a model uses (their
// relative precision is already lost), so the trainer, evaluation and generation run under it.
//
// The mode is per thread: the guard sets it on each pool thread inside one parallel region, so
// every thread count computes the same bits. Tests of the kernels run without it (they check
// denormal inputs on purpose).
#pragma once

namespace rill::cpu {

class FlushDenormalsGuard {
 public:
  FlushDenormalsGuard();
  ~FlushDenormalsGuard();
  FlushDenormalsGuard(const FlushDenormalsGuard&) = delete;
  FlushDenormalsGuard& operator=(const FlushDenormalsGuard&) = delete;

 private:
  unsigned saved_;  // the calling thread's FTZ/DAZ bits before the guard
};

// Whether the calling thread flushes denormals now (FTZ and DAZ both set).
bool flushing_denormals();

}  // namespace rill::cpu
