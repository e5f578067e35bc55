// Linear scan kernels (rill::cpu, f32): h_t = a_t h_{t-1} + b_t forward, and the backward (a
// reverse scan into db, then da = db ⊙ h_{t-1}), on preallocated buffers (kernel time only).
// Shapes [N, T, D]: many lanes (one pass over lane tiles) and few lanes with a long T (the kernel
// chunks across time: local scans, carry, fix-up).
// "GB/s" counts the arrays each pass must touch once, 4 bytes an element: forward reads a, b and
// writes h (3 N T D); backward reads a, g, h and writes db, da, reading db once more (6 N T D).
// The chunked path touches its output twice more (the fix-up), which the count leaves out, so it
// reads as lower bandwidth. Compare against the machine's ~74 GB/s (ENVIRONMENT.md).
// Run: bench_linear_scan (OMP_NUM_THREADS=1 for one core).
#include <benchmark/benchmark.h>

#include "rill/backend/cpu/linear_scan.h"
#include "rill/core/tensor.h"

namespace {

using rill::Tensor;

void run(benchmark::State& st, bool backward) {
  const int64_t n = st.range(0), t = st.range(1), d = st.range(2);
  Tensor a = Tensor::uniform({n, t, d}, 0.9, 1.0, 1), b = Tensor::randn({n, t, d}, 2);
  Tensor h0 = Tensor::randn({n, d}, 3), h = Tensor::empty({n, t, d});
  Tensor g = Tensor::randn({n, t, d}, 4), da = Tensor::empty({n, t, d}),
         db = Tensor::empty({n, t, d});
  rill::LinearScanArgs args{a, b, h0};
  rill::cpu::linear_scan(args, h);
  for (auto _ : st) {
    if (backward)
      rill::cpu::linear_scan_backward(args, h, g, {da, db, Tensor()});
    else
      rill::cpu::linear_scan(args, h);
    benchmark::ClobberMemory();
  }
  const double bytes = double(backward ? 6 : 3) * n * t * d * 4;
  st.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
  st.counters["chunks"] = double(rill::cpu::linear_scan_chunks(n, t, d));
}

void fwd(benchmark::State& st) { run(st, false); }
void bwd(benchmark::State& st) { run(st, true); }

// {N, T, D}: AReLiT-like many lanes (B 8, H·r·d = 4·2·64 = 512), a wide state, few long lanes.
#define SHAPES \
  Args({8, 1024, 512})->Args({4, 256, 4096})->Args({1, 16384, 16})->Args({1, 4096, 256})
BENCHMARK(fwd)->SHAPES->Unit(benchmark::kMillisecond);
BENCHMARK(bwd)->SHAPES->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
