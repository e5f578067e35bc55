// Square (and tiny and skinny) f32 matrix products through rill::matmul with each GEMM provider,
// side by side with the provider called directly (dnnl_sgemm / cblas_sgemm on preallocated
// buffers); rill and the direct call alternated in one loop; batches of small products.
// Counters: GFLOP/s and the fraction of the machine's measured fp32 peak (peak_frac).
// Run: bench_matmul --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// (add --benchmark_enable_random_interleaving=true on a shared, noisy machine).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "rill/backend/cpu/gemm.h"
#include "rill/core/tensor.h"
#include "rill/ops/matmul.h"

namespace {

using rill::Tensor;
using rill::cpu::GemmProvider;

// Measured GEMM ceilings here (ENVIRONMENT.md section 3): about 210 GFLOP/s on one core and 390
// on both.
double peak_gflops() { return omp_get_max_threads() >= 2 ? 390.0 : 210.0; }

// Plain counters from the loop's own wall time (the rate flag would print them as "x/s").
void set_counters(benchmark::State& state, int64_t m, int64_t n, int64_t k, double seconds) {
  const double gflops = 2.0 * m * n * k * 1e-9 * static_cast<double>(state.iterations()) / seconds;
  state.counters["GFLOP/s"] = gflops;
  state.counters["peak_frac"] = gflops / peak_gflops();
}

enum class Path { rill_onednn, rill_openblas, direct_onednn, direct_openblas };

void bm_gemm(benchmark::State& state, Path path, int64_t m, int64_t n, int64_t k) {
  Tensor a = Tensor::randn({m, k}, 1), b = Tensor::randn({k, n}, 2);
  Tensor c = Tensor::zeros({m, n});  // the direct calls' output, already faulted in
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* cp = c.data<float>();
  auto run = [&] {
    switch (path) {
      case Path::rill_onednn:
      case Path::rill_openblas: {
        Tensor out = rill::matmul(a, b);
        benchmark::DoNotOptimize(out.data_ptr());
        break;
      }
      case Path::direct_onednn:
        dnnl_sgemm('N', 'N', m, n, k, 1.f, ap, k, bp, n, 0.f, cp, n);
        break;
      case Path::direct_openblas:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m),
                    static_cast<int>(n), static_cast<int>(k), 1.f, ap, static_cast<int>(k), bp,
                    static_cast<int>(n), 0.f, cp, static_cast<int>(n));
        break;
    }
    benchmark::ClobberMemory();
  };
  const GemmProvider prev = rill::cpu::gemm_provider();
  rill::cpu::set_gemm_provider(path == Path::rill_openblas ? GemmProvider::openblas
                                                           : GemmProvider::onednn);
  run();  // warm: the library's buffers and rill's cached output block
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) run();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  rill::cpu::set_gemm_provider(prev);
  set_counters(state, m, n, k, elapsed.count());
}

// rill::matmul and the direct call of the same provider alternated (ABBA) inside one loop, so
// that the machine's background load hits both alike: the median of the per-iteration time
// ratios is the overhead of going through rill.
void bm_paired(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  Tensor a = Tensor::randn({m, k}, 1), b = Tensor::randn({k, n}, 2);
  Tensor c = Tensor::zeros({m, n});
  const bool onednn = rill::cpu::gemm_provider() == GemmProvider::onednn;
  auto direct = [&] {
    if (onednn)
      dnnl_sgemm('N', 'N', m, n, k, 1.f, a.data<float>(), k, b.data<float>(), n, 0.f,
                 c.data<float>(), n);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m),
                  static_cast<int>(n), static_cast<int>(k), 1.f, a.data<float>(),
                  static_cast<int>(k), b.data<float>(), static_cast<int>(n), 0.f, c.data<float>(),
                  static_cast<int>(n));
    benchmark::ClobberMemory();
  };
  auto via_rill = [&] {
    Tensor out = rill::matmul(a, b);
    benchmark::DoNotOptimize(out.data_ptr());
    benchmark::ClobberMemory();
  };
  using Clock = std::chrono::steady_clock;
  auto timed = [](auto&& fn) {
    const auto t0 = Clock::now();
    fn();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  via_rill();
  direct();
  std::vector<double> ratios;
  for (auto _ : state) {
    const double r1 = timed(via_rill), d1 = timed(direct), d2 = timed(direct), r2 = timed(via_rill);
    ratios.push_back((r1 + r2) / (d1 + d2));
  }
  std::sort(ratios.begin(), ratios.end());
  state.counters["rill_over_direct"] = ratios[ratios.size() / 2];
  state.counters["pairs"] = static_cast<double>(ratios.size());
}

// A batch of small square products, as attention's per-head matmuls make: rill (which spreads
// whole matrices over threads below its size threshold) against a loop of direct dnnl_sgemm
// calls, each threaded, and against the same loop spread over threads by hand.
enum class BatchPath { rill, direct_threaded, direct_by_batch };

void bm_batched(benchmark::State& state, BatchPath path, int64_t nb, int64_t s) {
  Tensor a = Tensor::randn({nb, s, s}, 1), b = Tensor::randn({nb, s, s}, 2);
  Tensor c = Tensor::zeros({nb, s, s});
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* cp = c.data<float>();
  auto one = [&](int64_t i) {
    dnnl_sgemm('N', 'N', s, s, s, 1.f, ap + i * s * s, s, bp + i * s * s, s, 0.f, cp + i * s * s,
               s);
  };
  auto run = [&] {
    if (path == BatchPath::rill) {
      Tensor out = rill::matmul(a, b);
      benchmark::DoNotOptimize(out.data_ptr());
    } else if (path == BatchPath::direct_threaded) {
      for (int64_t i = 0; i < nb; ++i) one(i);
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nb; ++i) one(i);
    }
    benchmark::ClobberMemory();
  };
  const GemmProvider prev = rill::cpu::gemm_provider();
  rill::cpu::set_gemm_provider(GemmProvider::onednn);
  run();
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) run();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  rill::cpu::set_gemm_provider(prev);
  set_counters(state, nb * s, s, s, elapsed.count());
}

void register_all() {
  const struct {
    const char* name;
    Path path;
  } paths[] = {{"rill_matmul/onednn", Path::rill_onednn},
               {"direct/dnnl_sgemm", Path::direct_onednn},
               {"rill_matmul/openblas", Path::rill_openblas},
               {"direct/cblas_sgemm", Path::direct_openblas}};
  for (int64_t s : {256, 512, 1024, 2048, 4096})
    for (const auto& p : paths)
      benchmark::RegisterBenchmark((std::string(p.name) + "/square/" + std::to_string(s)).c_str(),
                                   bm_gemm, p.path, s, s, s)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  // Tiny products: the time is rill's fixed per-call cost (checks, output, views) plus the
  // library's own, against the library's alone.
  for (const auto& p : paths)
    benchmark::RegisterBenchmark((std::string(p.name) + "/tiny/8").c_str(), bm_gemm, p.path, 8, 8,
                                 8)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  // Skinny products (a few rows against a projection), where the providers differ most.
  for (int64_t rows : {16, 64, 256})
    for (const auto& p : paths)
      benchmark::RegisterBenchmark(
          (std::string(p.name) + "/skinny_Mx1024x1024/" + std::to_string(rows)).c_str(), bm_gemm,
          p.path, rows, 1024, 1024)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
  for (int64_t s : {256, 512, 1024, 2048, 4096})
    benchmark::RegisterBenchmark(("paired/rill_vs_direct/square/" + std::to_string(s)).c_str(),
                                 bm_paired, s, s, s)
        ->UseRealTime()
        ->MinTime(s >= 2048 ? 4.0 : 1.0)
        ->Unit(benchmark::kMillisecond);
  for (int64_t rows : {16, 64, 256})
    benchmark::RegisterBenchmark(
        ("paired/rill_vs_direct/skinny_Mx1024x1024/" + std::to_string(rows)).c_str(), bm_paired,
        rows, 1024, 1024)
        ->UseRealTime()
        ->MinTime(1.0)
        ->Unit(benchmark::kMicrosecond);
  const struct {
    const char* name;
    BatchPath path;
  } batch_paths[] = {{"rill_matmul/onednn", BatchPath::rill},
                     {"direct/dnnl_sgemm_loop", BatchPath::direct_threaded},
                     {"direct/dnnl_sgemm_omp_over_batch", BatchPath::direct_by_batch}};
  const struct {
    int64_t nb, s;
  } batches[] = {{64, 32}, {64, 64}, {64, 128}, {64, 256}, {8, 512}, {3, 512}};
  for (const auto& bs : batches)
    for (const auto& p : batch_paths)
      benchmark::RegisterBenchmark(
          (std::string(p.name) + "/batched_" + std::to_string(bs.nb) + "x/" + std::to_string(bs.s))
              .c_str(),
          bm_batched, p.path, bs.nb, bs.s)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("rill_gemm_provider",
                              rill::cpu::gemm_provider_name(rill::cpu::gemm_provider()));
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("openblas_corename", openblas_get_corename());
  benchmark::AddCustomContext("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
  benchmark::AddCustomContext("peak_gflops_for_peak_frac", std::to_string(peak_gflops()));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
