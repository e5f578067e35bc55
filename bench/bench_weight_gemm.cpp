// weight_gemm (y = x W^T with packed weights) at the shapes of generation in the small LM
// (d_model 256, MLP 1024, 4 layers, byte vocabulary: 3.2 M parameters, 12.9 MB in f32), for
// B = 1, 4, 16, 64 streams, 1 and 2 threads, every format and kernel, beside oneDNN's sgemm on
// the same shapes (W row-major, as nn::Linear stores it). Prints markdown tables.
//
// Each shape cycles through copies of its weights totalling at least 12.9 MB of f32 (so a call
// finds its weights in L3, as it does in a model's step, not in L2 from the call before); the
// "model" table runs one whole step's products (per layer q, k, v, o 256x256, MLP 1024x256 and
// 256x1024; the head 256x256) on one copy of the model in each format.
// Limits measured in the same run: the read bandwidth of a 12.9 MB buffer (a vectorised sum, AVX2
// and AVX-512, the better one; each thread its share) and oneDNN's sgemm at 2048^3. "of_bw" is the
// weight bytes a call reads per second over that bandwidth, "of_peak" GFLOP/s over that peak.
// Times are medians over repetitions, the variants interleaved within each repetition.
// Usage: bench_weight_gemm [--quick] [--reps N] [--section shapes|model|threads] [--one-copy]
//                          [--dot] [--only NAME,NAME...]
//   --one-copy  per product, the same weights every call (from L2 when they fit)
//   --dot       also the bf16 VDPBF16PS kernel (left out by default: weight_gemm never picks it,
//               and the kernels measured after it ran 10-15% slower here)
//   --only      only the kernels whose names contain one of these substrings
//   --threads   per product and model step, only this many threads (the limits and the
//               threads table still measure 1 and 2)
#include <dnnl.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "bench/support/machine.h"
#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/weight_gemm.h"
#include "rill/backend/weights.h"
#include "rill/core/tensor.h"

using namespace rill;
using namespace rill::bench;
using cpu::WeightKernel;

namespace {

constexpr double kModelBytes = 12.9e6;

double seconds(Clock::time_point a) { return seconds_since(a); }

struct Limits {
  double bw[3] = {0, 0, 0};    // GB/s by thread count
  double peak[3] = {0, 0, 0};  // GFLOP/s by thread count
};

// --- variants ------------------------------------------------------------------------------------

struct Variant {
  const char* name;
  WeightFormat format;
  bool onednn;          // dnnl_sgemm on the row-major f32 weights
  WeightKernel kernel;  // otherwise this kernel
};

std::vector<Variant> variants(bool with_dot) {
  const WeightKernel best =
      cpu::simd_level_supported(cpu::SimdLevel::avx512) ? WeightKernel::avx512 : WeightKernel::avx2;
  std::vector<Variant> v = {{"oneDNN sgemm f32", WeightFormat::f32, true, best}};
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8}) {
    v.push_back({nullptr, f, false, best});
    if (best != WeightKernel::avx2) v.push_back({nullptr, f, false, WeightKernel::avx2});
    if (f == WeightFormat::bf16 && with_dot &&
        cpu::weight_kernel_supported(WeightKernel::avx512_bf16_dot, f))
      v.push_back({nullptr, f, false, WeightKernel::avx512_bf16_dot});
  }
  return v;
}

std::string variant_name(const Variant& v) {
  if (v.name) return v.name;
  return std::string(weight_format_name(v.format)) + " " + cpu::weight_kernel_name(v.kernel);
}

// The weights of one product in every form a variant reads.
struct Weights {
  int64_t N, K;
  Tensor row_major;  // [N, K] f32
  PackedWeights packed[3];
  size_t bytes(const Variant& v) const {
    return v.onednn ? size_t(N * K * 4) : packed[int(v.format)].bytes();
  }
};

Weights make_weights(int64_t N, int64_t K, uint64_t seed) {
  Weights w{N, K, Tensor::randn({N, K}, seed), {}};
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8})
    w.packed[int(f)] = pack_weights(w.row_major, f);
  return w;
}

void call(const Variant& v, const Weights& w, const float* x, int64_t B, float* y) {
  if (v.onednn)
    dnnl_sgemm('N', 'T', B, w.N, w.K, 1.f, x, w.K, w.row_major.data<float>(), w.K, 0.f, y, w.N);
  else
    cpu::weight_gemm_with(v.kernel, x, B, w.K, w.packed[int(v.format)], nullptr, y, w.N, false);
}

// Median seconds per run of each variant's `once` (variants interleaved per repetition; each
// timing covers enough runs to last about 1 ms).
struct Times {
  std::vector<double> median, best;
};

Times time_variants(const std::vector<std::function<void()>>& once, int reps) {
  std::vector<int> runs(once.size());
  for (size_t i = 0; i < once.size(); ++i) {
    once[i]();
    const auto a = Clock::now();
    once[i]();
    runs[i] = std::clamp(int(1e-3 / std::max(seconds(a), 1e-7)), 1, 100000);
  }
  std::vector<std::vector<double>> t(once.size());
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < once.size(); ++i) {
      const auto a = Clock::now();
      for (int k = 0; k < runs[i]; ++k) once[i]();
      t[i].push_back(seconds(a) / runs[i]);
    }
  Times out;
  for (auto& v : t) {
    out.median.push_back(median(v));
    out.best.push_back(*std::min_element(v.begin(), v.end()));
  }
  return out;
}

// Each variant run over every matrix of `ws` in turn (one product each, batch B), timed.
Times time_variants_over(const std::vector<Variant>& vars, const std::vector<Weights>& ws,
                         const float* x, int64_t B, float* y, int reps) {
  std::vector<std::function<void()>> fns;
  for (const Variant& v : vars)
    fns.push_back([&, v] {
      for (const Weights& w : ws) call(v, w, x, B, y);
    });
  return time_variants(fns, reps);
}

struct Shape2 {
  const char* what;
  int64_t N, K;
};

// The time of the f32 variant with the dispatcher's own kernel (the reference of "vs f32").
size_t f32_index(const std::vector<Variant>& vars) {
  for (size_t i = 0; i < vars.size(); ++i)
    if (!vars[i].onednn && vars[i].format == WeightFormat::f32) return i;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int reps = 15;
  std::string section = "all";
  std::string only;  // run only the kernels whose names contain one of these (a,b,...)
  bool one_copy = false;
  bool with_dot = false;
  int only_threads = 0;  // per product and model step: only this thread count  // the VDPBF16PS
                         // kernel: it slows the kernels run after it (see below)  // per product:
                         // the same weights every call (from L2 when they fit)
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--section") && i + 1 < argc) section = argv[++i];
    if (!std::strcmp(argv[i], "--one-copy")) one_copy = true;
    if (!std::strcmp(argv[i], "--dot")) with_dot = true;
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) only_threads = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
  }
  if (quick) reps = 5;
  auto want = [&](const char* s) { return section == "all" || section == s; };
  const int hw_threads = std::min(2, omp_get_max_threads());
  const int max_threads = only_threads ? only_threads : hw_threads;
  const int min_threads = only_threads ? only_threads : 1;
  const char* policy = std::getenv("OMP_WAIT_POLICY");

  std::printf("# weight_gemm: y[B, N] = x[B, K] W^T with packed weights\n\n");
  std::printf("- CPU: %s; AVX-512: %s\n", cpu_model().c_str(), avx512_flags().c_str());
  std::printf("- SIMD level: %s (best here %s); threads up to %d; OMP_WAIT_POLICY=%s\n",
              cpu::simd_level_name(cpu::simd_level()), cpu::simd_level_name(cpu::simd_level_best()),
              hw_threads, policy ? policy : "(unset)");
  std::printf(
      "- load average at start: %s; times are medians of %d repetitions (best in "
      "brackets)\n",
      loadavg().c_str(), reps);

  Limits lim;
  std::printf(
      "\n## Limits measured in this run\n\nRead bandwidth of a 12.9 MB buffer (GB/s; "
      "a vectorised sum, each thread its share, read as 1, 2, 4 or 8 streams side by side; "
      "the best is the bound) and oneDNN's sgemm at 2048^3:\n\n| threads | AVX2 1 / 2 / "
      "4 / 8 streams | AVX-512 1 / 2 / 4 / 8 streams | bound GB/s | sgemm GFLOP/s "
      "|\n|---|---|---|---|---|\n");
  const bool has512 = cpu::simd_level_supported(cpu::SimdLevel::avx512);
  for (int th = 1; th <= hw_threads; ++th) {
    std::string cols[2];
    for (int wide = 0; wide <= int(has512); ++wide)
      for (int streams : {1, 2, 4, 8}) {
        const double bw = read_bandwidth(kModelBytes, th, streams, reps,
                                         wide ? LoadWidth::avx512 : LoadWidth::avx2);
        lim.bw[th] = std::max(lim.bw[th], bw);
        cols[wide] += (streams > 1 ? " / " : "") + std::to_string(int(bw + 0.5));
      }
    lim.peak[th] = sgemm_gflops(2048, 2048, 2048, false, th, quick ? 2 : 4);
    std::printf("| %d | %s | %s | %.1f | %.1f |\n", th, cols[0].c_str(),
                has512 ? cols[1].c_str() : "-", lim.bw[th], lim.peak[th]);
  }

  std::vector<Variant> vars = variants(with_dot);
  if (!only.empty())
    vars.erase(std::remove_if(vars.begin(), vars.end(),
                              [&](const Variant& v) {
                                // a comma-separated list of substrings, any of which keeps it
                                const std::string name = variant_name(v);
                                size_t a = 0;
                                while (a <= only.size()) {
                                  const size_t b = std::min(only.find(',', a), only.size());
                                  if (name.find(only.substr(a, b - a)) != std::string::npos)
                                    return false;
                                  a = b + 1;
                                }
                                return true;
                              }),
               vars.end());
  const size_t i32 = f32_index(vars);
  std::printf("\n## Dispatch\n\nweight_gemm's choice at this SIMD level: ");
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8})
    for (int64_t B : {1, 64})
      std::printf("%s B=%lld: %s; ", weight_format_name(f), (long long)B,
                  cpu::weight_kernel_name(cpu::weight_gemm_kernel(f, B)));
  std::printf("on several threads from an estimated %.1f us.\n",
              cpu::weight_gemm_parallel_min_us());

  const int64_t maxB = 64, maxD = 1024;
  Tensor xt = Tensor::randn({maxB, maxD}, 7), yt = Tensor::zeros({maxB, maxD});
  const float* x = xt.data<float>();
  float* y = yt.data<float>();
  const std::vector<int64_t> batches =
      quick ? std::vector<int64_t>{1, 16} : std::vector<int64_t>{1, 4, 16, 64};

  // --- per product ---
  // The head (256 x 256 here, a byte vocabulary) has the attention projections' shape.
  const std::vector<Shape2> shapes = {
      {"q/k/v/o, head", 256, 256}, {"MLP up", 1024, 256}, {"MLP down", 256, 1024}};
  if (want("shapes")) {
    std::printf("\n## Per product (weights cycled through copies totalling >= 12.9 MB of f32)\n\n");
    std::printf(
        "| N x K | B | threads | kernel | us/call | GB/s | of_bw | GFLOP/s | of_peak | "
        "time vs f32 |\n|---|---|---|---|---|---|---|---|---|---|\n");
  }
  for (const Shape2& s : shapes) {
    if (!want("shapes")) break;
    const int64_t copies =
        one_copy ? 1 : std::max<int64_t>(1, int64_t(kModelBytes / (s.N * s.K * 4) + 0.999));
    std::vector<Weights> ws;
    for (int64_t c = 0; c < copies; ++c) ws.push_back(make_weights(s.N, s.K, 100 + c));
    for (int64_t B : batches)
      for (int th = min_threads; th <= max_threads; ++th) {
        omp_set_num_threads(th);
        const Times t = time_variants_over(vars, ws, x, B, y, reps);
        for (size_t i = 0; i < vars.size(); ++i) {
          const double per = t.median[i] / copies;
          const double gbs = ws[0].bytes(vars[i]) / per * 1e-9;
          const double gf = 2.0 * B * s.N * s.K / per * 1e-9;
          std::printf(
              "| %lldx%lld | %lld | %d | %s | %.2f (%.2f) | %.1f | %.2f | %.1f | %.2f | %.2f |\n",
              (long long)s.N, (long long)s.K, (long long)B, th, variant_name(vars[i]).c_str(),
              per * 1e6, t.best[i] / copies * 1e6, gbs, gbs / lim.bw[th], gf, gf / lim.peak[th],
              t.median[i] / t.median[i32]);
        }
      }
  }

  // --- one model step ---
  if (want("model")) {
    std::printf(
        "\n## One model step (4 layers x (4 x 256x256, 1024x256, 256x1024) + head "
        "256x256 = 3.21 M weights, one copy)\n\n");
    std::printf(
        "| B | threads | kernel | weights MB | us/step | tokens/s | GB/s | of_bw | "
        "GFLOP/s | of_peak | time vs f32 |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::vector<Weights> model;
    for (int l = 0; l < 4; ++l) {
      for (int i = 0; i < 4; ++i) model.push_back(make_weights(256, 256, 1000 + 10 * l + i));
      model.push_back(make_weights(1024, 256, 1000 + 10 * l + 4));
      model.push_back(make_weights(256, 1024, 1000 + 10 * l + 5));
    }
    model.push_back(make_weights(256, 256, 2000));
    double macs = 0;
    for (const Weights& w : model) macs += double(w.N * w.K);
    for (int64_t B : batches)
      for (int th = min_threads; th <= max_threads; ++th) {
        omp_set_num_threads(th);
        const Times t = time_variants_over(vars, model, x, B, y, reps);
        for (size_t i = 0; i < vars.size(); ++i) {
          double bytes = 0;
          for (const Weights& w : model) bytes += double(w.bytes(vars[i]));
          const double sec = t.median[i];
          const double gbs = bytes / sec * 1e-9, gf = 2.0 * B * macs / sec * 1e-9;
          std::printf(
              "| %lld | %d | %s | %.2f | %.1f (%.1f) | %.0f | %.1f | %.2f | %.1f | %.2f | %.2f |\n",
              (long long)B, th, variant_name(vars[i]).c_str(), bytes * 1e-6, sec * 1e6,
              t.best[i] * 1e6, B / sec, gbs, gbs / lim.bw[th], gf, gf / lim.peak[th],
              sec / t.median[i32]);
        }
      }
  }

  // --- where a second thread starts to pay ---
  if (hw_threads >= 2 && want("threads")) {
    std::printf(
        "\n## Second thread: one thread against two forced (threshold 0), the dispatcher's "
        "kernel, weights cycled as above; `est` is weight_gemm_estimate_us, and calls with est "
        "below %.1f us run on one thread\n\n| format | B x N x K | est us | 1 thread us | 2 "
        "threads us | 2 vs 1 |\n|---|---|---|---|---|---|\n",
        cpu::weight_gemm_parallel_min_us());
    const double saved = cpu::weight_gemm_parallel_min_us();
    cpu::set_weight_gemm_parallel_min_us(0);
    for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8}) {
      const Variant v{nullptr, f, false, cpu::weight_gemm_kernel(f, 1)};
      for (auto [B, N, K] : std::vector<std::array<int64_t, 3>>{{1, 64, 256},
                                                                {1, 128, 256},
                                                                {1, 256, 256},
                                                                {1, 1024, 256},
                                                                {4, 64, 256},
                                                                {4, 256, 256},
                                                                {16, 64, 64},
                                                                {16, 64, 256},
                                                                {16, 256, 256}}) {
        const int64_t copies = std::max<int64_t>(1, int64_t(kModelBytes / (N * K * 4) + 0.999));
        std::vector<Weights> ws;
        for (int64_t c = 0; c < copies; ++c) ws.push_back(make_weights(N, K, 300 + c));
        std::vector<std::function<void()>> fns;
        for (int th : {1, 2})
          fns.push_back([&, th] {
            omp_set_num_threads(th);
            for (const Weights& w : ws) call(v, w, x, B, y);
          });
        const Times t = time_variants(fns, reps);
        std::printf("| %s | %lldx%lldx%lld | %.1f | %.2f (%.2f) | %.2f (%.2f) | %.2f |\n",
                    weight_format_name(f), (long long)B, (long long)N, (long long)K,
                    cpu::weight_gemm_estimate_us(ws[0].packed[int(f)], B),
                    t.median[0] / copies * 1e6, t.best[0] / copies * 1e6,
                    t.median[1] / copies * 1e6, t.best[1] / copies * 1e6,
                    t.median[1] / t.median[0]);
      }
    }
    cpu::set_weight_gemm_parallel_min_us(saved);
  }
  std::printf("\nload average at end: %s\n", loadavg().c_str());
  return 0;
}
