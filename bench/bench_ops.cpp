// Memory-bound op benchmarks at sizes far beyond the caches: elementwise ops, a reduction,
// softmax and layer_norm. Each reports GB/s (bytes the op must move: inputs read + outputs
// written) and the fraction of the machine's measured bandwidth (ENVIRONMENT.md: about 74 GB/s
// STREAM triad on 2 threads, 40 GB/s on 1).
#include <benchmark/benchmark.h>
#include <omp.h>

#include "rill/core/allocator.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/norm.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"

using namespace rill;

namespace {

double machine_bandwidth() { return omp_get_max_threads() >= 2 ? 74e9 : 40e9; }

// Rate counters: bytes moved per second, and that rate as a fraction of the machine's limit.
void finish(benchmark::State& state, double bytes_per_iter) {
  using benchmark::Counter;
  state.counters["GB/s"] = Counter(bytes_per_iter / 1e9, Counter::kIsIterationInvariantRate);
  state.counters["of_limit"] =
      Counter(bytes_per_iter / machine_bandwidth(), Counter::kIsIterationInvariantRate);
}

constexpr int64_t kN = int64_t(1) << 24;  // 16M floats = 64 MiB per tensor

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

void BM_gelu(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(gelu(a, GeluApprox::tanh).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_exp(benchmark::State& state) {
  Tensor a = Tensor::randn({kN}, 1);
  for (auto _ : state) benchmark::DoNotOptimize(exp(a).data_ptr());
  finish(state, 2.0 * kN * 4);
}

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

void BM_layer_norm(benchmark::State& state) {
  const int64_t d = state.range(0);
  Tensor a = Tensor::randn({kN / d, d}, 1);
  Tensor w = Tensor::randn({d}, 2), b = Tensor::randn({d}, 3);
  for (auto _ : state) benchmark::DoNotOptimize(layer_norm(a, w, b).data_ptr());
  finish(state, 2.0 * kN * 4);
}

void BM_rms_norm(benchmark::State& state) {
  const int64_t d = state.range(0);
  Tensor a = Tensor::randn({kN / d, d}, 1);
  Tensor w = Tensor::randn({d}, 2);
  for (auto _ : state) benchmark::DoNotOptimize(rms_norm(a, w).data_ptr());
  finish(state, 2.0 * kN * 4);
}

}  // namespace

BENCHMARK(BM_add)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_mul_scalar)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_exp)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gelu)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_sum_rows)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_softmax)->Arg(256)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_layer_norm)->Arg(256)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_rms_norm)->Arg(256)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("rill.threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("rill.bandwidth_limit_GBps",
                              std::to_string(machine_bandwidth() / 1e9));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
