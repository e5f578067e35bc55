// What a benchmark measures of the machine it runs on, in the same run as the figures it
// reports (machines of one kind differ: a Zen 5 with AVX-512, a Zen 4 without): the CPU and its
// ISA, the load, the read bandwidth of a buffer of a given size (from cache or memory), and
// oneDNN's sgemm rate at given shapes. Plus the small timing helpers every benchmark uses.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rill::bench {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0);
double median(std::vector<double> v);
// Median seconds of fn over `reps` runs after `warmup` untimed ones.
double time_median(int reps, int warmup, const std::function<void()>& fn);

std::string cpu_model();     // /proc/cpuinfo's model name
std::string avx512_flags();  // the avx512* flags, or "none"
std::string loadavg();       // /proc/loadavg's first three fields

// GB/s reading a buffer of `bytes` with `threads` threads, each summing its contiguous share as
// `streams` parts read side by side, in 256-bit (AVX2) or 512-bit (AVX-512, where the CPU has
// it; `best` takes it then) loads. A buffer that fits the caches measures cache bandwidth (a
// model's weights in L3).
enum class LoadWidth { avx2, avx512, best };
double read_bandwidth(double bytes, int threads, int streams = 4, int reps = 7,
                      LoadWidth width = LoadWidth::best);

// oneDNN sgemm GFLOP/s for C[m,n] = A[m,k] B (row-major; trans_b: B given as [n,k]) on `threads`.
double sgemm_gflops(int64_t m, int64_t n, int64_t k, bool trans_b, int threads, int reps = 5);

// The sgemm rate of a transformer's training step at its own shapes: the products of q, k, v, o
// (4 of d x d), the FFN (d x f, f x d) and the head (d x v) over m = batch x seq rows, forward
// and the two backward products of each, weighted by their FLOPs, on `threads` threads.
double training_gemm_peak(int64_t m, int64_t d, int64_t f, int64_t v, int threads);

}  // namespace rill::bench
