// Causal linear attention kernels (rill::cpu, f32): the recurrent and chunked forms, forward,
// backward and both, at T = 256..16384 with B=1, H=4, Dk=Dv=64 (chunk 64), on preallocated
// buffers (kernel time only: no autograd, no output allocation).
//
// FLOPs are counted per form as the multiply-adds its kernels execute, 2 FLOPs each:
//   recurrent  forward  4 T Dk Dv        (S += k v^T, out = S^T q: one FMA each per state element)
//              backward 12 T Dk Dv       (three scans: S^T for dq, U for dv, U^T for dk)
//   chunked    forward  per chunk of L rows 4 L Dk Dv + 2 L^2 (Dk + Dv) + Dk Dv
//              (K^T V, Q S, the full L x L products Q K^T and A V, upper half included, and the
//              prefix sum), backward 10 L Dk Dv + L^2 (6 Dk + 4 Dv) + 2 Dk Dv.
// "GFLOP/s" is that count over the fastest iteration's time ("best_ms"), "peak_frac" its share
// of the measured GEMM peak (about 390 GFLOP/s on 2 threads, 210 on 1; ENVIRONMENT.md), and
// "alg_GFLOP/s" one common count for both forms over the same time: the paper's Algorithm 1
// (forward 4, backward 10 T Dk Dv), so that it compares the forms like an inverse time.
// Run: bench_linear_attention_kernel (OMP_NUM_THREADS=1 for one core)
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "rill/backend/cpu/gemm.h"
#include "rill/backend/cpu/linear_attention.h"
#include "rill/core/tensor.h"

namespace {

using rill::Tensor;

constexpr int64_t kB = 1, kH = 4, kDk = 64, kDv = 64, kChunk = 64;

double peak_gflops() { return omp_get_max_threads() >= 2 ? 390.0 : 210.0; }

enum class Form { recurrent, chunked };
enum class Pass { forward, backward, both };

double executed_flops(Form form, Pass pass, int64_t t) {
  const double n = kB * kH, dk = kDk, dv = kDv;
  double fwd = 0, bwd = 0;
  if (form == Form::recurrent) {
    fwd = 4 * n * t * dk * dv;
    bwd = 12 * n * t * dk * dv;
  } else {
    for (int64_t t0 = 0; t0 < t; t0 += kChunk) {
      const double l = std::min(kChunk, t - t0);
      fwd += n * (4 * l * dk * dv + 2 * l * l * (dk + dv) + dk * dv);
      bwd += n * (10 * l * dk * dv + l * l * (6 * dk + 4 * dv) + 2 * dk * dv);
    }
  }
  return (pass == Pass::backward ? 0 : fwd) + (pass == Pass::forward ? 0 : bwd);
}

double algorithm_flops(Pass pass, int64_t t) {
  const double base = double(kB * kH) * t * kDk * kDv;
  return (pass == Pass::backward ? 0 : 4 * base) + (pass == Pass::forward ? 0 : 10 * base);
}

void bm_linear_attention(benchmark::State& state, Form form, Pass pass) {
  const int64_t t = state.range(0), n = kB * kH;
  Tensor q = Tensor::randn({n, t, kDk}, 1), k = Tensor::randn({n, t, kDk}, 2);
  Tensor v = Tensor::randn({n, t, kDv}, 3), s0 = Tensor::randn({n, kDk, kDv}, 4);
  Tensor g = Tensor::randn({n, t, kDv}, 5), dsf = Tensor::randn({n, kDk, kDv}, 6);
  Tensor out = Tensor::zeros({n, t, kDv}), sf = Tensor::zeros({n, kDk, kDv});
  Tensor dq = Tensor::zeros({n, t, kDk}), dk = Tensor::zeros({n, t, kDk});
  Tensor dv = Tensor::zeros({n, t, kDv}), ds0 = Tensor::zeros({n, kDk, kDv});
  auto run = [&] {
    if (pass != Pass::backward) {
      if (form == Form::recurrent)
        rill::cpu::linear_attention_recurrent_forward(q, k, v, s0, out, sf);
      else
        rill::cpu::linear_attention_chunked_forward(q, k, v, s0, kChunk, out, sf);
    }
    if (pass != Pass::forward) {
      if (form == Form::recurrent)
        rill::cpu::linear_attention_recurrent_backward(q, k, v, s0, g, dsf, dq, dk, dv, ds0);
      else
        rill::cpu::linear_attention_chunked_backward(q, k, v, s0, g, dsf, kChunk, dq, dk, dv, ds0);
    }
    benchmark::ClobberMemory();
  };
  run();  // warm: scratch blocks cached by rill's allocator, oneDNN's kernels generated
  // The machines are shared: the mean (the Time column) includes other jobs' interference, so
  // the rates use the fastest iteration, which is what the kernel can do.
  double best = 1e30;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    run();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
  }
  const double gflops = executed_flops(form, pass, t) / best * 1e-9;
  state.counters["best_ms"] = best * 1e3;
  state.counters["GFLOP/s"] = gflops;
  state.counters["peak_frac"] = gflops / peak_gflops();
  state.counters["alg_GFLOP/s"] = algorithm_flops(pass, t) / best * 1e-9;
}

void register_all() {
  benchmark::AddCustomContext("threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("gemm", rill::cpu::gemm_provider_name(rill::cpu::gemm_provider()));
  benchmark::AddCustomContext("avx512", __builtin_cpu_supports("avx512f") ? "yes" : "no");
  benchmark::AddCustomContext("shape", "B=1 H=4 Dk=Dv=64 chunk=64 f32");
  const struct {
    const char* name;
    Form form;
  } forms[] = {{"recurrent", Form::recurrent}, {"chunked", Form::chunked}};
  const struct {
    const char* name;
    Pass pass;
  } passes[] = {{"fwd", Pass::forward}, {"bwd", Pass::backward}, {"fwd+bwd", Pass::both}};
  for (const auto& p : passes)
    for (const auto& f : forms)
      benchmark::RegisterBenchmark((std::string(f.name) + "/" + p.name).c_str(),
                                   bm_linear_attention, f.form, p.pass)
          ->RangeMultiplier(4)
          ->Range(256, 16384)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
