// Causal softmax attention, fused (rill::attention, FlashAttention-2 style) against the composite
// baseline (rill::attention_naive: matmul, masked_fill, softmax, matmul), f32, B 1, H 4, D 64,
// T = 256 .. 4096: forward + backward (training), forward only (prefill), and one-token decode
// against a T-token cache. Counters: GFLOP/s, the fraction of the machine's measured fp32 GEMM
// peak, and peak_MB, the most bytes tensors held during one iteration beyond the inputs (from
// rill's allocator counters).
//
// FLOPs follow FlashAttention's convention: forward 4 * B * H * Tq * Tk * D, halved under the
// causal mask; backward 2.5 times forward. Shapes: B batch, H heads, T tokens, D head dim.
// Run: bench_attention_kernel --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "rill/autograd/grad_mode.h"
#include "rill/core/allocator.h"
#include "rill/ops/attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"

namespace {

using rill::Tensor;

// Measured GEMM ceilings here (ENVIRONMENT.md section 3): about 210 GFLOP/s on one core and 390
// on both.
double peak_gflops() { return omp_get_max_threads() >= 2 ? 390.0 : 210.0; }

constexpr int64_t kB = 1, kH = 4, kD = 64;

enum class Mode { train, prefill, decode };

void bm_attention(benchmark::State& state, bool naive, Mode mode) {
  const int64_t T = state.range(0);
  const int64_t Tq = mode == Mode::decode ? 1 : T;
  rill::AttentionOptions opt;
  opt.q_offset = T - Tq;
  Tensor q = Tensor::randn({kB, kH, Tq, kD}, 1), k = Tensor::randn({kB, kH, T, kD}, 2),
         v = Tensor::randn({kB, kH, T, kD}, 3), w = Tensor::randn({kB, kH, Tq, kD}, 4);
  if (mode == Mode::train)
    for (Tensor* t : {&q, &k, &v}) t->set_requires_grad(true);
  auto run = [&] {
    if (mode == Mode::train) {
      Tensor y = naive ? rill::attention_naive(q, k, v, opt) : rill::attention(q, k, v, opt);
      rill::sum(rill::mul(y, w)).backward();
      for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    } else {
      rill::NoGradGuard no_grad;
      Tensor y = naive ? rill::attention_naive(q, k, v, opt) : rill::attention(q, k, v, opt);
      benchmark::DoNotOptimize(y.data_ptr());
    }
  };
  rill::Allocator& alloc = rill::Allocator::instance();
  const size_t live = alloc.live_bytes();
  alloc.reset_peak();
  run();  // warm: the allocator's cached blocks, and the peak of one iteration
  const double peak_mb = static_cast<double>(alloc.peak_bytes() - live) / (1 << 20);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) run();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

  // Decode sees every key; a causal square sees half of them.
  double flops = 4.0 * kB * kH * Tq * T * kD * (mode == Mode::decode ? 1.0 : 0.5);
  if (mode == Mode::train) flops *= 3.5;
  const double gflops = flops * 1e-9 * static_cast<double>(state.iterations()) / elapsed.count();
  state.counters["GFLOP/s"] = gflops;
  state.counters["peak_frac"] = gflops / peak_gflops();
  state.counters["peak_MB"] = peak_mb;
}

void register_all() {
  const struct {
    const char* name;
    Mode mode;
  } modes[] = {{"fwd_bwd", Mode::train}, {"fwd", Mode::prefill}, {"decode", Mode::decode}};
  for (const auto& m : modes)
    for (bool naive : {false, true}) {
      const std::string name = std::string("attention/") + m.name + (naive ? "/naive" : "/fused");
      auto* b =
          benchmark::RegisterBenchmark(name.c_str(), bm_attention, naive, m.mode)
              ->UseRealTime()
              ->Unit(m.mode == Mode::decode ? benchmark::kMicrosecond : benchmark::kMillisecond);
      for (int64_t T : {256, 512, 1024, 2048, 4096}) b->Arg(T);
    }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  const char* isa = std::getenv("RILL_ATTENTION_ISA");
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
  benchmark::AddCustomContext("RILL_ATTENTION_ISA", isa ? isa : "(unset: AVX-512 if present)");
  benchmark::AddCustomContext("shape", "B 1, H 4, D 64, f32, causal");
  benchmark::AddCustomContext("peak_gflops_for_peak_frac", std::to_string(peak_gflops()));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
