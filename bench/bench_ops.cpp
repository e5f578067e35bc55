// Memory-bound op benchmarks at sizes far beyond the caches (16M f32 elements, 64 MiB per
// tensor): elementwise ops (exp, GELU erf / tanh forward and backward, SiLU), a reduction, the
// softmax family, cross-entropy and the norms. Each reports GB/s (bytes the op must move: inputs
// read + outputs written) and `of_bw`, that rate as a fraction of the memory bandwidth this
// program measures itself at start-up on the same machine and thread count: a STREAM-like scale
// loop (b = 1.5 a, plain stores, 64 MiB arrays, median of 15 passes), counted the same way
// (8 bytes per element). Backward kernels are called on the cpu backend directly with outputs
// allocated once; forward ops go through the op layer (outputs come from the caching allocator).
// Run: OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive build/bench_ops [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "bench/support/machine.h"
#include "rill/backend/backend.h"
#include "rill/backend/cpu/elementwise.h"
#include "rill/backend/cpu/norm.h"
#include "rill/backend/cpu/softmax.h"
#include "rill/core/allocator.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/norm.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"
#if __has_include("rill/backend/cpu/vec_math.h")
#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/vec_math.h"
#define RILL_BENCH_HAS_VEC_MATH 1
#endif

using namespace rill;

namespace {

constexpr int64_t kN = int64_t(1) << 24;  // 16M floats = 64 MiB per tensor

// The scale loop's rate in bytes per second (read a + write b), median of 15 passes after 3
// warm-ups; the same static split over OpenMP threads as rill's kernels.
double measure_bandwidth() {
  std::vector<float> a(kN, 1.0f), b(kN, 0.0f);
  std::vector<double> rates;
  for (int rep = 0; rep < 18; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    float* bp = b.data();
    const float* ap = a.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < kN; ++i) bp[i] = 1.5f * ap[i];
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(b.data());
    if (rep >= 3) rates.push_back(8.0 * kN / s);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

double& bandwidth() {
  static double bw = 0;
  return bw;
}

// Rate counters: bytes moved per second, and that rate as a fraction of the measured bandwidth.
void finish(benchmark::State& state, double bytes_per_iter) {
  using benchmark::Counter;
  state.counters["GB/s"] = Counter(bytes_per_iter / 1e9, Counter::kIsIterationInvariantRate);
  state.counters["of_bw"] =
      Counter(bytes_per_iter / bandwidth(), Counter::kIsIterationInvariantRate);
}

// The bandwidth reference itself, as a row of its own: the same loop as measure_bandwidth, run
// between the others (its of_bw shows how far the machine's speed drifted during the run).
void BM_scale_reference(benchmark::State& state) {
  std::vector<float> a(kN, 1.0f), b(kN, 0.0f);
  for (auto _ : state) {
    float* bp = b.data();
    const float* ap = a.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < kN; ++i) bp[i] = 1.5f * ap[i];
    benchmark::DoNotOptimize(b.data());
  }
  finish(state, 2.0 * kN * 4);
}

void BM_add(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1), b = Tensor::randn({kN}, 2);
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).data_ptr());
  finish(state, 3.0 * kN * 4);
}

void BM_mul_scalar(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(mul(a, 1.5).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_exp(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(exp(a).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_tanh(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(tanh(a).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_gelu_erf(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(gelu(a).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_gelu_tanh(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(gelu(a, GeluApprox::tanh).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_silu(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(silu(a).data_ptr());
  finish(state, 2.0 * kN * 4);
}

// dx = dy * op'(x): reads x and dy, writes dx (the saved y is not read by these ops).
void unary_backward_bench(benchmark::State& state, UnaryOp op) {
  Tensor x = Tensor::randn({kN}, 1), dy = Tensor::randn({kN}, 2);
  Tensor y = Tensor::randn({kN}, 3), dx = Tensor::empty({kN});
  for (auto _ : state) {
    cpu::unary_backward(op, UnaryParams{}, x, y, dy, dx);
    benchmark::DoNotOptimize(dx.data_ptr());
  }
  finish(state, 3.0 * kN * 4);
}
void BM_gelu_erf_backward(benchmark::State& state) {
  unary_backward_bench(state, UnaryOp::gelu_erf);
}
void BM_gelu_tanh_backward(benchmark::State& state) {
  unary_backward_bench(state, UnaryOp::gelu_tanh);
}
void BM_silu_backward(benchmark::State& state) { unary_backward_bench(state, UnaryOp::silu); }

void BM_sum_rows(benchmark::State& state) {
  Tensor a = Tensor::randn({4096, kN / 4096}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(sum(a, {1}).data_ptr());
  finish(state, 1.0 * kN * 4);
}

void BM_softmax(benchmark::State& state) {
  const int64_t d = state.range(0);
  Tensor a = Tensor::randn({kN / d, d}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(softmax(a, -1).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_log_softmax(benchmark::State& state) {
  const int64_t d = state.range(0);
  Tensor a = Tensor::randn({kN / d, d}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(log_softmax(a, -1).data_ptr());
  finish(state, 2.0 * kN * 4);
}

// Reads y and dy, writes dx.
void softmax_backward_bench(benchmark::State& state, bool log) {
  const int64_t d = state.range(0);
  Tensor y = log ? log_softmax(Tensor::randn({kN / d, d}, 1), -1)
                 : softmax(Tensor::randn({kN / d, d}, 1), -1);
  Tensor dy = Tensor::randn({kN / d, d}, 2), dx = Tensor::empty({kN / d, d});
  for (auto _ : state) {
    cpu::softmax_backward(y, dy, dx, log);
    benchmark::DoNotOptimize(dx.data_ptr());
  }
  finish(state, 3.0 * kN * 4);
}
void BM_softmax_backward(benchmark::State& state) { softmax_backward_bench(state, false); }
void BM_log_softmax_backward(benchmark::State& state) { softmax_backward_bench(state, true); }

// Forward reads the logits once (the per-row statistics and targets are negligible); backward
// reads them and writes dlogits.
void BM_cross_entropy(benchmark::State& state) {
  const int64_t d = state.range(0);
  Tensor a = Tensor::randn({kN / d, d}, 1);
  Tensor t = Tensor::randint({kN / d}, 0, d, 2);
  for (auto _ : state) benchmark::DoNotOptimize(cross_entropy(a, t).data_ptr());
  finish(state, 1.0 * kN * 4);
}

void BM_cross_entropy_backward(benchmark::State& state) {
  const int64_t d = state.range(0), rows = kN / d;
  Tensor a = Tensor::randn({rows, d}, 1);
  Tensor t = Tensor::randint({rows}, 0, d, 2);
  Tensor mx = Tensor::empty({rows}), ls = Tensor::empty({rows}), loss = Tensor::empty({});
  cpu::cross_entropy_forward(a, t, -100, rows, mx, ls, loss);
  Tensor dloss = Tensor::scalar(1.0), dx = Tensor::empty({rows, d});
  for (auto _ : state) {
    cpu::cross_entropy_backward(a, t, mx, ls, dloss, -100, rows, dx);
    benchmark::DoNotOptimize(dx.data_ptr());
  }
  finish(state, 2.0 * kN * 4);
}

void BM_layer_norm(benchmark::State& state) {
  const int64_t d = state.range(0);
  Tensor a = Tensor::randn({kN / d, d}, 1);
  Tensor w = Tensor::randn({d}, 2), b = Tensor::randn({d}, 3);
  for (auto _ : state) benchmark::DoNotOptimize(layer_norm(a, w, b).data_ptr());
  finish(state, 2.0 * kN * 4);
}

// Reads x and dy, writes dx (dweight / dbias are [D]: negligible).
void BM_layer_norm_backward(benchmark::State& state) {
  const int64_t d = state.range(0), rows = kN / d;
  Tensor x = Tensor::randn({rows, d}, 1), w = Tensor::randn({d}, 2), b = Tensor::randn({d}, 3);
  Tensor y = Tensor::empty({rows, d}), mean = Tensor::empty({rows}), rstd = Tensor::empty({rows});
  cpu::layer_norm_forward(x, w, b, 1e-5, y, mean, rstd);
  Tensor dy = Tensor::randn({rows, d}, 4), dx = Tensor::empty({rows, d});
  Tensor dw = Tensor::empty({d}), db = Tensor::empty({d});
  for (auto _ : state) {
    cpu::layer_norm_backward(x, w, mean, rstd, dy, dx, dw, db);
    benchmark::DoNotOptimize(dx.data_ptr());
  }
  finish(state, 3.0 * kN * 4);
}

void BM_rms_norm(benchmark::State& state) {
  const int64_t d = state.range(0);
  Tensor a = Tensor::randn({kN / d, d}, 1);
  Tensor w = Tensor::randn({d}, 2);
  for (auto _ : state) benchmark::DoNotOptimize(rms_norm(a, w).data_ptr());
  finish(state, 2.0 * kN * 4);
}

}  // namespace

#define RILL_BENCH(fn) BENCHMARK(fn)->Unit(benchmark::kMillisecond)->UseRealTime()
RILL_BENCH(BM_scale_reference);
RILL_BENCH(BM_add);
RILL_BENCH(BM_mul_scalar);
RILL_BENCH(BM_exp);
RILL_BENCH(BM_tanh);
RILL_BENCH(BM_gelu_erf);
RILL_BENCH(BM_gelu_tanh);
RILL_BENCH(BM_silu);
RILL_BENCH(BM_gelu_erf_backward);
RILL_BENCH(BM_gelu_tanh_backward);
RILL_BENCH(BM_silu_backward);
RILL_BENCH(BM_sum_rows);
RILL_BENCH(BM_softmax)->Arg(256)->Arg(4096);
RILL_BENCH(BM_log_softmax)->Arg(4096);
RILL_BENCH(BM_softmax_backward)->Arg(4096);
RILL_BENCH(BM_log_softmax_backward)->Arg(4096);
RILL_BENCH(BM_cross_entropy)->Arg(32768);
RILL_BENCH(BM_cross_entropy_backward)->Arg(32768);
RILL_BENCH(BM_layer_norm)->Arg(256)->Arg(4096);
RILL_BENCH(BM_layer_norm_backward)->Arg(1024);
RILL_BENCH(BM_rms_norm)->Arg(256)->Arg(4096);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  set_active_backend(Backend::cpu);
  bandwidth() = measure_bandwidth();
  benchmark::AddCustomContext("rill.cpu", rill::bench::cpu_model());
  benchmark::AddCustomContext("rill.threads", std::to_string(omp_get_max_threads()));
#ifdef RILL_BENCH_HAS_VEC_MATH
  benchmark::AddCustomContext("rill.isa", cpu::simd_level_name(cpu::simd_level()));
#else
  benchmark::AddCustomContext("rill.isa", "none (scalar libm)");
#endif
  benchmark::AddCustomContext("rill.measured_bandwidth_GBps", std::to_string(bandwidth() / 1e9));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
