// weight_gemm's dispatch: argument checks, the choice of kernel, the row blocks and packing of x,
// and the split of the output panels over threads. The kernels are in weight_gemm_avx2.cpp and
// weight_gemm_avx512.cpp (bodies in weight_gemm_kernels-inl.h).
#include "rill/backend/cpu/weight_gemm.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/weight_gemm_isa.h"
#include "rill/core/bfloat16.h"
#include "rill/core/error.h"
#include "rill/core/profiler.h"

namespace rill::cpu {

namespace {

// One core's rates for the estimate: about 27 GB/s reading from L3 and 110 GFLOP/s of f32 FMA
// (AVX-512, Emerald Rapids, bench_weight_gemm; a Zen 4 without AVX-512 has about 60 GB/s and 81).
constexpr double kBytesPerUs = 25e3, kMacsPerUs = 50e3;

// Calls estimated below this run on one thread. Measured with bench_weight_gemm's last table
// (two threads forced against one, GOMP's default wait policy, medians): calls estimated at
// 2.6-2.7 us took 0.94-1.16x the one-thread time on two (f32 1x64x256, 4x64x256; bf16
// 1x128x256; int8 1x256x256), at 5.2 us 0.78-0.87x (every format, B = 1, 4, 16), at 10-42 us
// 0.56-0.70x. Under OMP_WAIT_POLICY=passive a sleeping thread takes longer to wake, so there
// the break-even lies higher.
std::atomic<double> g_parallel_min_us{4.0};

const WeightKernels& kernels_for(WeightKernel k) {
  return k == WeightKernel::avx2 ? avx2::weight_kernels() : avx512::weight_kernels();
}

// Splits x into its three bf16 parts: hi = bf16(x), mid = bf16(x - hi), lo = bf16(x - hi - mid)
// (each difference is exact in f32), so hi + mid + lo equals x to within 2^-24 |x|.
void split3(float x, uint16_t out[3]) {
  float r = x;
  for (int part = 0; part < 3; ++part) {
    out[part] = float_to_bfloat16(r);
    r -= bfloat16_to_float(out[part]);
  }
}

}  // namespace

const char* weight_kernel_name(WeightKernel k) {
  switch (k) {
    case WeightKernel::avx2:
      return "avx2";
    case WeightKernel::avx512:
      return "avx512";
    case WeightKernel::avx512_bf16_dot:
      return "avx512_bf16_dot";
  }
  return "?";
}

bool weight_kernel_supported(WeightKernel k, WeightFormat format) {
  switch (k) {
    case WeightKernel::avx2:
      return true;
    case WeightKernel::avx512:
      return simd_level_supported(SimdLevel::avx512);
    case WeightKernel::avx512_bf16_dot:
      return format == WeightFormat::bf16 && simd_level_supported(SimdLevel::avx512_bf16);
  }
  return false;
}

// AVX-512 wherever the level allows, for every format and B: measured at least as fast as AVX2
// everywhere (equal where one core's L3 bandwidth bounds both, B = 1; about 1.5-2x at B >= 16).
// Never the dot kernel: x must go in as three bf16 parts to keep f32 accuracy, so it issues three
// VDPBF16PS where the shift kernel issues two FMAs (plus a shift or mask shared by all rows);
// measured 1.25-1.46x slower at B = 1 and 4-6x at B >= 4 (one thread, bench_weight_gemm --dot).
WeightKernel weight_gemm_kernel(WeightFormat format, int64_t B) {
  return simd_level() == SimdLevel::avx2 ? WeightKernel::avx2 : WeightKernel::avx512;
}

double weight_gemm_parallel_min_us() { return g_parallel_min_us.load(std::memory_order_relaxed); }
void set_weight_gemm_parallel_min_us(double us) {
  g_parallel_min_us.store(us, std::memory_order_relaxed);
}

double weight_gemm_estimate_us(const PackedWeights& w, int64_t B) {
  return std::max(double(w.bytes()) / kBytesPerUs, double(B) * w.n() * w.k() / kMacsPerUs);
}

void weight_gemm(const float* x, int64_t B, int64_t ldx, const PackedWeights& w, const float* bias,
                 float* y, int64_t ldy, bool accumulate) {
  weight_gemm_with(weight_gemm_kernel(w.format(), B), x, B, ldx, w, bias, y, ldy, accumulate);
}

void weight_gemm_with(WeightKernel kernel, const float* x, int64_t B, int64_t ldx,
                      const PackedWeights& w, const float* bias, float* y, int64_t ldy,
                      bool accumulate) {
  ProfileScope scope("weight_gemm");
  const int64_t N = w.n(), K = w.k();
  RILL_CHECK(B >= 0, "[weight_gemm] negative row count B={}", B);
  RILL_CHECK(ldx >= K && ldy >= N,
             "[weight_gemm] row strides too small: ldx={} (K={}), ldy={} (N={})", ldx, K, ldy, N);
  RILL_CHECK(weight_kernel_supported(kernel, w.format()),
             "[weight_gemm] kernel {} cannot run {} weights on this CPU",
             weight_kernel_name(kernel), weight_format_name(w.format()));
  if (B == 0 || N == 0) return;
  RILL_CHECK(y != nullptr && (K == 0 || x != nullptr), "[weight_gemm] null x or y (B={} N={} K={})",
             B, N, K);
  if (K == 0) {  // an empty sum: y = bias (+ y)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < N; ++n) {
        const float v = bias ? bias[n] : 0.f;
        y[b * ldy + n] = accumulate ? y[b * ldy + n] + v : v;
      }
    return;
  }

  const WeightKernels& table = kernels_for(kernel);
  const bool dot = kernel == WeightKernel::avx512_bf16_dot;
  WeightPanelsFn fn = dot                                ? table.bf16_dot
                      : w.format() == WeightFormat::f32  ? table.f32
                      : w.format() == WeightFormat::bf16 ? table.bf16
                                                         : table.int8;

  // Row blocks as even as they can be (sizes differ by at most one), none above the kernels'
  // largest tile.
  const int64_t max_rows = table.max_rows[dot ? 3 : int(w.format())];
  const int64_t blocks = (B + max_rows - 1) / max_rows;
  thread_local std::vector<int64_t> row0, block_off;
  thread_local std::vector<float> xp;  // reused: a fresh buffer per call faults its pages in
  row0.resize(blocks + 1);
  block_off.resize(blocks);
  for (int64_t i = 0; i <= blocks; ++i) row0[i] = i * B / blocks;

  WeightGemmCall c;
  c.blocks = blocks;
  c.N = N;
  c.K = K;
  c.scales = w.format() == WeightFormat::int8 ? w.scales() : nullptr;
  c.bias = bias;
  c.y = y;
  c.ldy = ldy;
  c.accumulate = accumulate;
  c.panels = w.format() == WeightFormat::f32    ? static_cast<const void*>(w.f32_data())
             : w.format() == WeightFormat::bf16 ? static_cast<const void*>(w.bf16_data())
                                                : static_cast<const void*>(w.int8_data());

  // The dot kernel multiplies bf16 by bf16: x goes in as three planes of bf16 parts, paired (as
  // dwords) like the weights; an odd K pads x with a zero. The other kernels read x as it is: a
  // packed copy would be written here and read by every thread, and moving it between cores
  // cost bf16 at B = 16 all of a second thread's gain (16.8 us against 19.6 on one; f32, which
  // read x in place, 10.3 against 18.2).
  c.x = x;
  c.ldx = ldx;
  if (dot) {
    const int64_t K2 = w.k_pairs();
    c.plane_stride = B * K2;
    xp.resize(size_t(3 * B * K2));
    c.xp = xp.data();
    uint32_t* planes = reinterpret_cast<uint32_t*>(xp.data());
    for (int64_t i = 0; i < blocks; ++i) {
      const int64_t mr = row0[i + 1] - row0[i];
      block_off[i] = row0[i] * K2;
      for (int64_t r = 0; r < mr; ++r) {
        const float* src = x + (row0[i] + r) * ldx;
        for (int64_t kp = 0; kp < K2; ++kp) {
          uint16_t even[3], odd[3] = {0, 0, 0};
          split3(src[2 * kp], even);
          if (2 * kp + 1 < K) split3(src[2 * kp + 1], odd);
          for (int part = 0; part < 3; ++part)
            planes[part * c.plane_stride + block_off[i] + kp * mr + r] =
                uint32_t(even[part]) | (uint32_t(odd[part]) << 16);
        }
      }
    }
  }
  c.row0 = row0.data();
  c.block_off = block_off.data();

  // Threads take contiguous ranges of panels. A call below the threshold runs here without
  // entering a parallel region at all (even a one-thread region costs a library call).
  const int64_t P = w.panels();
  if (P < 2 || omp_get_max_threads() < 2 || omp_in_parallel() ||
      weight_gemm_estimate_us(w, B) < weight_gemm_parallel_min_us())
    return fn(c, 0, P);
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    fn(c, P * t / T, P * (t + 1) / T);
  }
}

}  // namespace rill::cpu
