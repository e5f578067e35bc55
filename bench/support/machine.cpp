// Machine limits and timing helpers for the benchmarks (machine.h).
#include "bench/support/machine.h"

#include <dnnl.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "rill/backend/cpu/isa.h"
#include "rill/core/tensor.h"

namespace rill::bench {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double time_median(int reps, int warmup, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string avx512_flags() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, out;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) {
      size_t p = 0;
      while ((p = line.find(" avx512", p)) != std::string::npos) {
        const size_t e = line.find(' ', p + 1);
        out += line.substr(p + 1, e - p - 1) + " ";
        p = e;
      }
      break;
    }
  return out.empty() ? "none" : out;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

namespace {

// Sums n floats as `streams` contiguous parts read side by side (the kernels read 1 to 4 panels
// at once, and a core's prefetchers may follow several streams better than one).
float sum_avx2(const float* p, int64_t n, int streams) {
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  const int per = 8 / streams;  // vectors per stream per step
  const int64_t len = n / streams / 64 * 64;
  for (int64_t i = 0; i < len; i += 8 * per)
    for (int s = 0; s < streams; ++s)
      for (int j = 0; j < per; ++j)
        a[s * per + j] = _mm256_add_ps(a[s * per + j], _mm256_loadu_ps(p + s * len + i + 8 * j));
  float t = 0;
  for (int64_t i = streams * len; i < n; ++i) t += p[i];
  for (auto& v : a) {
    float u[8];
    _mm256_storeu_ps(u, v);
    for (float x : u) t += x;
  }
  return t;
}

// GCC 12's _mm512_reduce_add_ps trips -Wuninitialized once inlined (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f"))) float sum_avx512(const float* p, int64_t n, int streams) {
  __m512 a[8];
  for (auto& v : a) v = _mm512_setzero_ps();
  const int per = 8 / streams;
  const int64_t len = n / streams / 128 * 128;
  for (int64_t i = 0; i < len; i += 16 * per)
    for (int s = 0; s < streams; ++s)
      for (int j = 0; j < per; ++j)
        a[s * per + j] = _mm512_add_ps(a[s * per + j], _mm512_loadu_ps(p + s * len + i + 16 * j));
  float t = 0;
  for (int64_t i = streams * len; i < n; ++i) t += p[i];
  for (auto& v : a) t += _mm512_reduce_add_ps(v);
  return t;
}

#pragma GCC diagnostic pop

volatile float g_sink;

}  // namespace

double read_bandwidth(double bytes, int threads, int streams, int reps, LoadWidth width) {
  std::vector<float> buf(size_t(bytes / 4), 1.f);
  const int64_t n = int64_t(buf.size());
  const bool wide = width != LoadWidth::avx2 && cpu::simd_level_supported(cpu::SimdLevel::avx512);
  std::vector<double> t;
  for (int r = 0; r < reps + 2; ++r) {
    const auto a = Clock::now();
    float total = 0;
    for (int it = 0; it < 10; ++it) {
#pragma omp parallel num_threads(threads) reduction(+ : total)
      {
        const int64_t i = omp_get_thread_num(), T = omp_get_num_threads();
        const int64_t lo = n * i / T, hi = n * (i + 1) / T;
        total += wide ? sum_avx512(buf.data() + lo, hi - lo, streams)
                      : sum_avx2(buf.data() + lo, hi - lo, streams);
      }
    }
    g_sink = total;
    if (r >= 2) t.push_back(seconds_since(a) / 10);
  }
  return bytes / median(t) * 1e-9;
}

double sgemm_gflops(int64_t m, int64_t n, int64_t k, bool trans_b, int threads, int reps) {
  Tensor a = Tensor::randn({m, k}, 1), b = Tensor::randn(trans_b ? Shape{n, k} : Shape{k, n}, 2);
  Tensor c = Tensor::zeros({m, n});
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  const double s = time_median(reps, 1, [&] {
    dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, 1.f, a.data<float>(), k, b.data<float>(),
               trans_b ? k : n, 0.f, c.data<float>(), n);
  });
  omp_set_num_threads(saved);
  return 2.0 * double(m) * double(n) * double(k) / s * 1e-9;
}

double training_gemm_peak(int64_t m, int64_t d, int64_t f, int64_t v, int threads) {
  struct Shape3 {
    int64_t m, n, k;
    bool tb;
    int count;
  };
  const std::vector<Shape3> shapes = {
      {m, d, d, true, 4},  {m, f, d, true, 1},  {m, d, f, true, 1},   // forward x W^T
      {m, d, d, false, 4}, {m, d, f, false, 1}, {m, f, d, false, 1},  // dx = dy W
      {d, d, m, false, 4}, {f, d, m, false, 1}, {d, f, m, false, 1},  // dW = dy^T x
      {m, v, d, true, 1},  {m, d, v, false, 1}, {v, d, m, false, 1},  // the head
  };
  double flops = 0, secs = 0;
  for (const Shape3& s : shapes) {
    const double g = sgemm_gflops(s.m, s.n, s.k, s.tb, threads, 3);
    const double fl = 2.0 * s.m * s.n * s.k * s.count;
    flops += fl, secs += fl / (g * 1e9);
  }
  return flops / secs * 1e-9;
}

}  // namespace rill::bench
