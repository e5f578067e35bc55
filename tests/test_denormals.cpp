// FlushDenormalsGuard: FTZ/DAZ set on every pool thread while it lives and restored after; the
// trainer runs under it (denormals slowed a real run's GEMMs threefold).
#include <gtest/gtest.h>
#include <omp.h>

#include <vector>

#include "rill/backend/cpu/denormals.h"
#include "rill/train/trainer.h"
#include "tests/support/runs.h"

using namespace rill;
using namespace rill::testing;

namespace {

// Whether each pool thread (and the caller, first) flushes denormals.
std::vector<bool> flushing_per_thread() {
  std::vector<bool> out(1 + omp_get_max_threads());
  out[0] = cpu::flushing_denormals();
#pragma omp parallel num_threads(omp_get_max_threads())
  {
    const bool f = cpu::flushing_denormals();
#pragma omp critical
    out[1 + omp_get_thread_num()] = f;
  }
  return out;
}

// A denormal operand (DAZ) and a product that would underflow to a denormal (FTZ).
float denormal_operand() {
  volatile float tiny = 1e-39f, one = 1.0f;
  return tiny * one;
}
float underflowing_product() {
  volatile float a = 1e-30f, b = 1e-10f;
  return a * b;
}

}  // namespace

TEST(Denormals, GuardFlushesOnEveryThreadAndRestores) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(3);  // more threads than cores: every pool thread must be reached
  for (bool f : flushing_per_thread()) ASSERT_FALSE(f) << "the process starts without FTZ/DAZ";
  EXPECT_NE(denormal_operand(), 0.0f);
  EXPECT_NE(underflowing_product(), 0.0f);
  {
    cpu::FlushDenormalsGuard guard;
    for (bool f : flushing_per_thread()) EXPECT_TRUE(f);
    EXPECT_EQ(denormal_operand(), 0.0f);
    EXPECT_EQ(underflowing_product(), 0.0f);
    {
      cpu::FlushDenormalsGuard nested;  // a nested guard restores the outer one's mode
    }
    for (bool f : flushing_per_thread()) EXPECT_TRUE(f);
  }
  for (bool f : flushing_per_thread()) EXPECT_FALSE(f);
  EXPECT_NE(denormal_operand(), 0.0f);
  omp_set_num_threads(threads);
}

TEST(Denormals, TrainingRunsWithThemFlushed) {
  TempDir dir;
  prepare_pattern_corpus(dir.str());
  TrainConfig cfg = tiny_lm_run(dir.str(), dir / "run", {{"type", "linear_attention"}});
  cfg.steps = 3, cfg.warmup = 1;
  int steps = 0, flushed = 0;
  TrainEvents ev;
  ev.on_step = [&](const StepEvent&) { ++steps, flushed += cpu::flushing_denormals(); };
  train(cfg, false, ev);
  EXPECT_EQ(steps, 3);
  EXPECT_EQ(flushed, steps);
  EXPECT_FALSE(cpu::flushing_denormals()) << "train() leaves the mode as it found it";
}
