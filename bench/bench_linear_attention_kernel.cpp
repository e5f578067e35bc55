// Gated-state op kernels (rill::cpu, f32): the recurrent and chunked forms of causal linear
// attention, without decay, with a scalar decay g [B,H,T] and with vector decays on both sides
// (ga [B,H,T,Dk], gb [B,H,T,Dv], ReLiT's), their gradients wanted, forward
// and forward+backward, at T = 256..16384 with B=1, H=4, Dk=64, Dv = 64 or 65 (65: a mixer's
// normaliser column), chunk 64, on preallocated buffers (kernel time only: no autograd, no
// output allocation).
//
// FLOPs are counted per form as the operations its kernels execute, 2 per FMA and 1 per multiply
// (the decayed forms' exps, 1 + L/2 per chunk row or 1 per token, are not counted):
//   recurrent forward   4 T Dk Dv; decayed 5 T Dk Dv (s = d s + k v, out += q s)
//             backward  12 T Dk Dv; decayed 15 T Dk Dv + T (8 Dk + 2 Dv) (the epilogue's dots
//                       and the diagonal pairs added back)
//   chunked   forward   per chunk of L rows: 4 L Dk Dv + 2 L^2 (Dk + Dv) + Dk Dv (K^T V, Q S, the
//                       full L x L products Q K^T and A V, upper half included, and the prefix);
//                       decayed + L Dk + L Dv + L(L+1)/2 + Dk Dv (rescaled K rows and output
//                       rows, the mask, the decayed prefix)
//             backward  10 L Dk Dv + L^2 (6 Dk + 4 Dv) + 2 Dk Dv (with the recomputed K^T V);
//                       decayed + 8 L Dk + L Dv + L(L+1) + 1.5 L^2 + 4 Dk Dv (rescaled rows of K,
//                       Q, dQ, dK, dV, two masks, two decayed prefixes, and dg: 2 dots per row,
//                       the straddling sums over the L x L block, a_c <D_c, S_c>).
//   vector decays (both sides): every scan executes 6 flops a state element and token (the
//             decay factor, the decay, the write, the read-out): recurrent forward 6 T Dk Dv,
//             backward 4 scans, 24 T Dk Dv; chunked forward 6 T Dk Dv (each chunk's scan) +
//             2 T Dk Dv (what each token sees of its chunk's start state, a GEMM), backward
//             6 + 2 + 24 T Dk Dv (start states recomputed, the end-state gradients' GEMM, then
//             the four scans per chunk). Epilogues and prefixes are not counted.
// "GFLOP/s" is that count over the fastest iteration's time ("best_ms"), "peak_frac" its share
// of a GEMM peak measured at start-up in the same process (a 1024^3 sgemm through rill::cpu::gemm
// on every thread, best of 10; printed as gemm_peak_GFLOP/s), and "alg_GFLOP/s" one common count
// for every form over the same time: the paper's Algorithm 1 (forward 4, backward 10 T Dk Dv), so
// that it compares forms and decays like an inverse time. "best_cpu_ms" is the least process CPU
// time of an iteration (all threads): on a shared machine, with OMP_NUM_THREADS=1, the figure
// least disturbed by other jobs.
// Run: bench_linear_attention_kernel (OMP_NUM_THREADS=1 for one core); filter with e.g.
// --benchmark_filter='^chunked/(decay/|vector/)?fwd\+bwd/T:4096'. Names:
// form[/decay|/vector]/pass/T:t/Dv:d.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <string>

#include "rill/backend/cpu/gemm.h"
#include "rill/backend/cpu/linear_attention.h"
#include "rill/core/tensor.h"

namespace {

using rill::Tensor;

constexpr int64_t kB = 1, kH = 4, kDk = 64, kChunk = 64;

double g_peak = 0;  // GFLOP/s of the reference sgemm, measured in main

double measure_gemm_peak() {
  const int64_t n = 1024;
  Tensor a = Tensor::randn({n, n}, 1), b = Tensor::randn({n, n}, 2), c = Tensor::zeros({n, n});
  auto once = [&] {
    const auto start = std::chrono::steady_clock::now();
    rill::cpu::gemm(false, false, n, n, n, 1.0f, a.data<float>(), n, b.data<float>(), n, 0.0f,
                    c.data<float>(), n);
    const std::chrono::duration<double> e = std::chrono::steady_clock::now() - start;
    return e.count();
  };
  once();
  double best = 1e30;
  for (int i = 0; i < 10; ++i) best = std::min(best, once());
  return 2.0 * n * n * n / best * 1e-9;
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum class Form { recurrent, chunked };
enum class Pass { forward, both };
enum class Decay { none, scalar, vector };

double executed_flops(Form form, Pass pass, Decay kind, int64_t t, int64_t dv_) {
  const double n = kB * kH, dk = kDk, dv = dv_;
  const bool decay = kind == Decay::scalar;
  double fwd = 0, bwd = 0;
  if (kind == Decay::vector) {
    const double e = n * t * dk * dv;
    fwd = form == Form::recurrent ? 6 * e : 8 * e;
    bwd = form == Form::recurrent ? 24 * e : 32 * e;
  } else if (form == Form::recurrent) {
    fwd = (decay ? 5 : 4) * n * t * dk * dv;
    bwd = decay ? n * t * (15 * dk * dv + 8 * dk + 2 * dv) : 12 * n * t * dk * dv;
  } else {
    for (int64_t t0 = 0; t0 < t; t0 += kChunk) {
      const double l = std::min(kChunk, t - t0);
      const double f = 4 * l * dk * dv + 2 * l * l * (dk + dv) + dk * dv;
      const double fd = l * dk + l * dv + l * (l + 1) / 2 + dk * dv;
      fwd += n * (f + (decay ? fd : 0));
      bwd += n * (10 * l * dk * dv + l * l * (6 * dk + 4 * dv) + 2 * dk * dv);
      if (decay) bwd += n * (8 * l * dk + l * dv + l * (l + 1) + 1.5 * l * l + 4 * dk * dv);
    }
  }
  return fwd + (pass == Pass::forward ? 0 : bwd);
}

double algorithm_flops(Pass pass, int64_t t, int64_t dv) {
  const double base = double(kB * kH) * t * kDk * dv;
  return 4 * base + (pass == Pass::forward ? 0 : 10 * base);
}

void bm_linear_attention(benchmark::State& state, Form form, Pass pass, Decay kind) {
  const bool decay = kind == Decay::scalar;
  const int64_t t = state.range(0), dv = state.range(1), n = kB * kH;
  rill::GatedStateArgs a;
  a.q = Tensor::randn({n, t, kDk}, 1), a.k = Tensor::randn({n, t, kDk}, 2);
  a.v = Tensor::randn({n, t, dv}, 3), a.s0 = Tensor::randn({n, kDk, dv}, 4);
  // A data-dependent gate, log sigmoid-like: most steps keep 0.6-0.99 of the state.
  if (decay) a.g = Tensor::uniform({n, t}, -0.5, -0.01, 7);
  if (kind == Decay::vector) {
    a.ga = Tensor::uniform({n, t, kDk}, -0.5, -0.01, 8);
    a.gb = Tensor::uniform({n, t, dv}, -0.5, -0.01, 9);
  }
  Tensor dout = Tensor::randn({n, t, dv}, 5), dsf = Tensor::randn({n, kDk, dv}, 6);
  Tensor out = Tensor::zeros({n, t, dv}), sf = Tensor::zeros({n, kDk, dv});
  rill::GatedStateGrads gr{Tensor::zeros({n, t, kDk}),
                           Tensor::zeros({n, t, kDk}),
                           Tensor::zeros({n, t, dv}),
                           Tensor::zeros({n, kDk, dv}),
                           decay ? Tensor::zeros({n, t}) : Tensor(),
                           kind == Decay::vector ? Tensor::zeros({n, t, kDk}) : Tensor(),
                           kind == Decay::vector ? Tensor::zeros({n, t, dv}) : Tensor()};
  auto run = [&] {
    if (form == Form::recurrent)
      rill::cpu::linear_attention_recurrent_forward(a, out, sf);
    else
      rill::cpu::linear_attention_chunked_forward(a, kChunk, out, sf);
    if (pass == Pass::both) {
      if (form == Form::recurrent)
        rill::cpu::linear_attention_recurrent_backward(a, dout, dsf, gr);
      else
        rill::cpu::linear_attention_chunked_backward(a, dout, dsf, kChunk, gr);
    }
    benchmark::ClobberMemory();
  };
  run();  // warm: scratch blocks cached by rill's allocator, oneDNN's kernels generated
  // The machines are shared: the mean (the Time column) includes other jobs' interference, so
  // the rates use the fastest iteration, which is what the kernel can do. best_cpu_ms is the
  // least CPU time an iteration took over all threads: it does not count time the process was
  // descheduled, so on one thread it is the steadiest figure on a loaded machine.
  double best = 1e30, best_cpu = 1e30;
  for (auto _ : state) {
    const double cpu0 = process_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    run();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
    best_cpu = std::min(best_cpu, process_cpu_seconds() - cpu0);
  }
  const double gflops = executed_flops(form, pass, kind, t, dv) / best * 1e-9;
  state.counters["best_ms"] = best * 1e3;
  state.counters["best_cpu_ms"] = best_cpu * 1e3;
  state.counters["GFLOP/s"] = gflops;
  state.counters["peak_frac"] = gflops / g_peak;
  state.counters["alg_GFLOP/s"] = algorithm_flops(pass, t, dv) / best * 1e-9;
}

void register_all() {
  benchmark::AddCustomContext("threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("gemm", rill::cpu::gemm_provider_name(rill::cpu::gemm_provider()));
  benchmark::AddCustomContext("gemm_peak_GFLOP/s", std::to_string(g_peak));
  benchmark::AddCustomContext("avx512", __builtin_cpu_supports("avx512f") ? "yes" : "no");
  benchmark::AddCustomContext("shape", "B=1 H=4 Dk=64 Dv=64|65 chunk=64 f32");
  const struct {
    const char* name;
    Form form;
  } forms[] = {{"recurrent", Form::recurrent}, {"chunked", Form::chunked}};
  const struct {
    const char* name;
    Pass pass;
  } passes[] = {{"fwd", Pass::forward}, {"fwd+bwd", Pass::both}};
  const struct {
    const char* name;
    Decay kind;
  } decays[] = {{"", Decay::none}, {"/decay", Decay::scalar}, {"/vector", Decay::vector}};
  for (const auto& d : decays)
    for (const auto& p : passes)
      for (const auto& f : forms) {
        const std::string name = std::string(f.name) + d.name + "/" + p.name;
        benchmark::RegisterBenchmark(name.c_str(), bm_linear_attention, f.form, p.pass, d.kind)
            ->ArgsProduct({{256, 1024, 4096, 16384}, {64, 65}})
            ->ArgNames({"T", "Dv"})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
}

}  // namespace

int main(int argc, char** argv) {
  g_peak = measure_gemm_peak();
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
