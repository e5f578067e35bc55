// weight_gemm and packed weights: every format x kernel (avx2, avx512, the bf16 dot product) x
// B in {1, 3, 7, 16, 30, 64} (every tier of tile shapes: on AVX-512 up to 4 rows x 4 panels,
// 12 x 2 and 24 x 1, f32 and int8 in row blocks of at most 8 rows, bf16 of 24; on AVX2 1 x 4,
// 2 x 2 and up to 6 (bf16 5) x 1; several row blocks; single panels left over) x ragged N and K x
// accumulate x bias against the ref oracle on the same packed weights; the quantisation error
// against the exact f32 product within a derived bound; pack / unpack round trips (bf16 ties to
// even, int8 scales and zero rows); thread invariance; the avx2 and avx512 kernels giving the
// same bits; edge sizes and bad input.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/weight_gemm.h"
#include "rill/backend/ref/weight_gemm.h"
#include "rill/backend/weights.h"
#include "rill/core/bfloat16.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using cpu::SimdLevel;
using cpu::WeightKernel;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kSentinel = 12345.f;  // fills y's gaps between rows: masked stores must keep it

const WeightFormat kFormats[] = {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8};
const WeightKernel kKernels[] = {WeightKernel::avx2, WeightKernel::avx512,
                                 WeightKernel::avx512_bf16_dot};

// One call's operands, laid out as a caller might: x rows with a gap (filled with NaN, so a
// kernel that reads past K fails), y rows with a gap (a sentinel that must survive).
struct Operands {
  int64_t B, N, K, ldx, ldy;
  Tensor x;     // [B, ldx]
  Tensor bias;  // [N]
  Tensor y0;  // [B, ldy]: NaN in the first N columns (or random when accumulating), sentinel after
};

Operands make_operands(int64_t B, int64_t N, int64_t K, bool accumulate, uint64_t seed) {
  Operands o{B,
             N,
             K,
             K + 3,
             N + 5,
             random({B, K + 3}, DType::f32, seed),
             random({N}, DType::f32, seed + 1),
             Tensor::empty({B, N + 5})};
  float* x = o.x.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = K; k < o.ldx; ++k) x[b * o.ldx + k] = kNaN;
  const std::vector<float> r = random({B, N + 5}, DType::f32, seed + 2).to_vector<float>();
  float* y = o.y0.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < o.ldy; ++n)
      y[b * o.ldy + n] = n >= N ? kSentinel : accumulate ? r[b * o.ldy + n] : kNaN;
  return o;
}

// Runs the cpu kernel (or, with ref = true, the oracle) and returns y [B, ldy].
Tensor run(const Operands& o, const PackedWeights& w, WeightKernel kernel, bool bias,
           bool accumulate, bool ref = false) {
  Tensor y = o.y0.clone();
  const float* bp = bias ? o.bias.data<float>() : nullptr;
  if (ref)
    ref::weight_gemm(o.x.data<float>(), o.B, o.ldx, w, bp, y.data<float>(), o.ldy, accumulate);
  else
    cpu::weight_gemm_with(kernel, o.x.data<float>(), o.B, o.ldx, w, bp, y.data<float>(), o.ldy,
                          accumulate);
  return y;
}

Tensor head(const Tensor& y, int64_t N) { return y.slice(1, 0, N); }

::testing::AssertionResult gaps_kept(const Tensor& y, int64_t N) {
  const int64_t B = y.size(0), ld = y.size(1);
  const float* p = y.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = N; n < ld; ++n)
      if (p[b * ld + n] != kSentinel)
        return ::testing::AssertionFailure() << "y[" << b << ", " << n << "] past N was written";
  return ::testing::AssertionSuccess();
}

std::string describe(WeightFormat f, WeightKernel k, int64_t B, int64_t N, int64_t K, bool bias,
                     bool acc) {
  return std::string(weight_format_name(f)) + " " + cpu::weight_kernel_name(k) +
         " B=" + std::to_string(B) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
         (bias ? " bias" : "") + (acc ? " accumulate" : "");
}

const int64_t kBatches[] = {1, 3, 7, 16, 30, 64};

// Ragged on purpose: N and K not multiples of 16 (a partial last panel, odd K for the bf16
// pairs), and a few whole-panel shapes; N below one panel; K = 1.
const std::vector<std::pair<int64_t, int64_t>> kShapes = {
    {1, 1}, {5, 3}, {37, 29}, {64, 256}, {100, 130}, {130, 77}, {16, 1}, {47, 64}};

}  // namespace

// The oracle on the same packed weights, at the f32 tolerance. For bf16 and int8 this isolates
// the kernel from the quantisation: both sides multiply by exactly the same dequantised weights.
TEST(WeightGemm, EveryKernelMatchesRefOnTheSameWeights) {
  uint64_t seed = 100;
  for (WeightFormat f : kFormats)
    for (auto [N, K] : kShapes) {
      const PackedWeights w = pack_weights(random({N, K}, DType::f32, ++seed), f);
      for (int64_t B : kBatches)
        for (bool acc : {false, true}) {
          const Operands o = make_operands(B, N, K, acc, seed += 10);
          for (bool bias : {false, true}) {
            const Tensor expect = run(o, w, WeightKernel::avx2, bias, acc, /*ref=*/true);
            for (WeightKernel k : kKernels) {
              if (!cpu::weight_kernel_supported(k, f)) continue;
              const Tensor y = run(o, w, k, bias, acc);
              EXPECT_TRUE(all_close(head(y, N), head(expect, N)))
                  << describe(f, k, B, N, K, bias, acc);
              EXPECT_TRUE(gaps_kept(y, N)) << describe(f, k, B, N, K, bias, acc);
            }
          }
        }
    }
}

// The error that quantisation adds, against the exact product with the f32 weights, per element:
//   bf16: each weight is rounded to 8 significant bits, |w~ - w| <= 2^-8 |w| (round to nearest),
//         so |y~ - y| <= 2^-8 sum_k |x_k w_k|;
//   int8: |w~ - w| <= scale_n / 2 (round to nearest, never clamped: |w| <= 127 scale_n), so
//         |y~ - y| <= scale_n / 2 sum_k |x_k|.
// The bound gets the f32 tolerance on top (the kernel's own rounding, as in the test above) and
// 1e-6 of itself for the f32 arithmetic in the int8 scale and division. The worst share of the
// bound used is printed: random weights use a fraction of it (the errors have random signs).
TEST(WeightGemm, QuantisationErrorWithinItsBound) {
  uint64_t seed = 500;
  for (WeightFormat f : {WeightFormat::bf16, WeightFormat::int8}) {
    double worst_share = 0, worst_rel = 0;
    for (auto [N, K] : kShapes) {
      const Tensor wt = random({N, K}, DType::f32, ++seed);
      const PackedWeights exact = pack_weights(wt, WeightFormat::f32);
      const PackedWeights w = pack_weights(wt, f);
      const std::vector<float> wv = wt.to_vector<float>();
      for (int64_t B : {1, 16}) {
        const Operands o = make_operands(B, N, K, false, seed += 10);
        const Tensor y_exact = run(o, exact, WeightKernel::avx2, true, false, /*ref=*/true);
        const std::vector<double> ye = head(y_exact, N).to_vector<double>();
        double ss = 0;
        for (double v : ye) ss += v * v;
        const double rms = std::sqrt(ss / ye.size());
        for (WeightKernel k : kKernels) {
          if (!cpu::weight_kernel_supported(k, f)) continue;
          const std::vector<double> yq = head(run(o, w, k, true, false), N).to_vector<double>();
          const float* x = o.x.data<float>();
          for (int64_t b = 0; b < B; ++b)
            for (int64_t n = 0; n < N; ++n) {
              double bound = 0, m = 0;
              for (int64_t kk = 0; kk < K; ++kk) m = std::max(m, double(std::abs(wv[n * K + kk])));
              for (int64_t kk = 0; kk < K; ++kk) {
                const double ax = std::abs(x[b * o.ldx + kk]);
                bound += f == WeightFormat::bf16 ? std::ldexp(ax * std::abs(wv[n * K + kk]), -8)
                                                 : ax * (m / 127) / 2;
              }
              const double e = ye[b * N + n], err = std::abs(yq[b * N + n] - e);
              const double slack = tolerance(DType::f32) * std::max(std::abs(e), rms);
              ASSERT_LE(err, bound * (1 + 1e-6) + slack)
                  << describe(f, k, B, N, K, true, false) << " at (" << b << ", " << n << ")";
              if (bound > 0) worst_share = std::max(worst_share, err / bound);
              worst_rel = std::max(worst_rel, err / std::max(std::abs(e), rms));
            }
        }
      }
    }
    std::printf("%s: worst error %.3f of the bound; worst error / max(|y|, rms y) = %.2e\n",
                weight_format_name(f), worst_share, worst_rel);
  }
}

// avx2 and avx512 run the same chain of FMAs per output element, so they agree to the bit (this
// is what lets a model's outputs not depend on the machine's vector width).
TEST(WeightGemm, Avx2AndAvx512GiveTheSameBits) {
  if (!cpu::weight_kernel_supported(WeightKernel::avx512, WeightFormat::f32))
    GTEST_SKIP() << "no AVX-512 here";
  uint64_t seed = 900;
  for (WeightFormat f : kFormats)
    for (auto [N, K] : kShapes) {
      const PackedWeights w = pack_weights(random({N, K}, DType::f32, ++seed), f);
      for (int64_t B : kBatches) {
        const Operands o = make_operands(B, N, K, true, seed += 10);
        EXPECT_TRUE(bitwise_equal(run(o, w, WeightKernel::avx2, true, true),
                                  run(o, w, WeightKernel::avx512, true, true)))
            << describe(f, WeightKernel::avx512, B, N, K, true, true);
      }
    }
}

// Every kernel, 1, 2 and 3 threads, the threshold lowered so that every call is split (19
// panels over 3 threads: ranges that cut panel groups).
TEST(WeightGemm, ThreadInvariant) {
  const double saved = cpu::weight_gemm_parallel_min_us();
  cpu::set_weight_gemm_parallel_min_us(0);
  uint64_t seed = 1300;
  for (WeightFormat f : kFormats) {
    const PackedWeights w = pack_weights(random({301, 263}, DType::f32, ++seed), f);
    for (int64_t B : {1, 16, 64}) {
      const Operands o = make_operands(B, 301, 263, true, seed += 10);
      for (WeightKernel k : kKernels) {
        if (!cpu::weight_kernel_supported(k, f)) continue;
        expect_thread_invariant([&] { return std::vector<Tensor>{run(o, w, k, true, true)}; },
                                describe(f, k, B, 301, 263, true, true));
      }
    }
  }
  cpu::set_weight_gemm_parallel_min_us(saved);
}

// The dispatcher's own choice, under each SIMD level this CPU has (RILL_ISA=avx2 sets the first
// at start-up): the kernel it reports is the one it runs, and it follows the level.
TEST(WeightGemm, DispatchFollowsTheSimdLevel) {
  const Operands o = make_operands(16, 37, 29, false, 77);
  for (SimdLevel l : {SimdLevel::avx2, SimdLevel::avx512, SimdLevel::avx512_bf16}) {
    if (!cpu::simd_level_supported(l)) continue;
    cpu::SimdLevelOverride guard(l);
    for (WeightFormat f : kFormats) {
      const PackedWeights w = pack_weights(random({37, 29}, DType::f32, 78), f);
      for (int64_t B : {1, 4, 16, 64}) {
        const WeightKernel k = cpu::weight_gemm_kernel(f, B);
        if (l == SimdLevel::avx2) {
          EXPECT_EQ(k, WeightKernel::avx2);
        } else if (l == SimdLevel::avx512) {
          EXPECT_EQ(k, WeightKernel::avx512);
        }
        EXPECT_TRUE(cpu::weight_kernel_supported(k, f));
      }
      Tensor y = o.y0.clone(), y_with = o.y0.clone();
      cpu::weight_gemm(o.x.data<float>(), 16, o.ldx, w, nullptr, y.data<float>(), o.ldy, false);
      cpu::weight_gemm_with(cpu::weight_gemm_kernel(f, 16), o.x.data<float>(), 16, o.ldx, w,
                            nullptr, y_with.data<float>(), o.ldy, false);
      EXPECT_TRUE(bitwise_equal(y, y_with))
          << cpu::simd_level_name(l) << " " << weight_format_name(f);
    }
  }
}

TEST(WeightGemm, EmptySizes) {
  for (WeightFormat f : kFormats)
    for (WeightKernel k : kKernels) {
      if (!cpu::weight_kernel_supported(k, f)) continue;
      // K = 0: y = bias (+ y).
      const PackedWeights w0 = pack_weights(Tensor::zeros({5, 0}), f);
      EXPECT_EQ(w0.bytes(), 0u);
      const Operands o = make_operands(3, 5, 0, true, 5);
      const Tensor y = run(o, w0, k, true, true), expect = run(o, w0, k, true, true, true);
      EXPECT_TRUE(all_close(head(y, 5), head(expect, 5)));
      Tensor y_plain = o.y0.clone();
      cpu::weight_gemm_with(k, o.x.data<float>(), 3, o.ldx, w0, o.bias.data<float>(),
                            y_plain.data<float>(), o.ldy, false);
      EXPECT_TRUE(all_close(head(y_plain, 5), o.bias.unsqueeze(0).expand({3, 5})));
      // N = 0 and B = 0: nothing is touched (null pointers are fine).
      const PackedWeights wn = pack_weights(Tensor::zeros({0, 7}), f);
      cpu::weight_gemm_with(k, nullptr, 4, 7, wn, nullptr, nullptr, 0, false);
      const PackedWeights w = pack_weights(random({3, 7}, DType::f32, 6), f);
      cpu::weight_gemm_with(k, nullptr, 0, 7, w, nullptr, nullptr, 3, false);
    }
}

TEST(WeightGemm, BadInput) {
  const PackedWeights w = pack_weights(random({4, 6}, DType::f32, 1), WeightFormat::f32);
  std::vector<float> x(24), y(16);
  expect_error([&] { cpu::weight_gemm(x.data(), 2, 5, w, nullptr, y.data(), 4, false); },
               {"weight_gemm", "ldx=5", "K=6"});
  expect_error([&] { cpu::weight_gemm(x.data(), 2, 6, w, nullptr, y.data(), 3, false); },
               {"weight_gemm", "ldy=3", "N=4"});
  expect_error([&] { cpu::weight_gemm(x.data(), -1, 6, w, nullptr, y.data(), 4, false); },
               {"weight_gemm", "B=-1"});
  expect_error(
      [&] {
        pack_weights(random({2, 3, 4}, DType::f32, 1), WeightFormat::f32);
      },
      {"pack_weights", "[2, 3, 4]"});
  expect_error(
      [&] {
        pack_weights(random({2, 3}, DType::f64, 1), WeightFormat::bf16);
      },
      {"pack_weights", "f64"});
  Tensor inf = random({3, 4}, DType::f32, 1);
  inf.data<float>()[6] = std::numeric_limits<float>::infinity();
  expect_error([&] { pack_weights(inf, WeightFormat::int8); }, {"pack_weights", "(1, 2)"});
  expect_error([] { weight_format_from_name("fp8"); }, {"fp8", "f32, bf16 or int8"});
  EXPECT_EQ(weight_format_from_name("int8"), WeightFormat::int8);
}

// --- packing ---------------------------------------------------------------------------------

TEST(PackWeights, F32RoundTripsExactly) {
  for (auto [N, K] : kShapes) {
    const Tensor w = random({N, K}, DType::f32, N * 100 + K);
    const PackedWeights p =
        pack_weights(w.transpose(0, 1).contiguous().transpose(0, 1), WeightFormat::f32);
    EXPECT_TRUE(bitwise_equal(unpack_weights(p), w));
    EXPECT_EQ(p.bytes(), size_t(p.panels() * 16 * K * 4));
    const PackedWeights copy = p;  // deep copy
    EXPECT_TRUE(bitwise_equal(unpack_weights(copy), w));
  }
}

// Round to nearest, ties to even, in bf16's 8 significant bits: between 1 and 1 + 2^-7 the tie
// 1 + 2^-8 goes down to 1 (even), the tie 1 + 3 * 2^-8 up to 1 + 2^-6 (even); past a tie it
// rounds up; signs are symmetric.
TEST(PackWeights, Bf16RoundsToNearestEven) {
  const float t = std::ldexp(1.f, -8);
  const std::vector<float> in = {1 + t,        1 + 3 * t, 1 + t + t / 64, -(1 + t),
                                 -(1 + 3 * t), 3.0e38f,   1e-40f,         0.f};
  const std::vector<float> out = {1.f,
                                  1 + 4 * t,
                                  1 + 2 * t,
                                  -1.f,
                                  -(1 + 4 * t),
                                  bfloat16_to_float(float_to_bfloat16(3.0e38f)),
                                  bfloat16_to_float(float_to_bfloat16(1e-40f)),
                                  0.f};
  const PackedWeights p = pack_weights(Tensor::from_vector(in, {2, 4}), WeightFormat::bf16);
  EXPECT_EQ(unpack_weights(p).to_vector<float>(), out);
  EXPECT_EQ(p.bytes(), size_t(16 * 2 * 2 * 2));  // one panel, two k pairs of 16 x 2 halves
  // Random values: the relative error of each is at most 2^-8, and the result is a bf16.
  const Tensor w = random({37, 29}, DType::f32, 3);
  const std::vector<float> a = w.to_vector<float>(),
                           b = unpack_weights(pack_weights(w, WeightFormat::bf16))
                                   .to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LE(std::abs(b[i] - a[i]), std::ldexp(std::abs(a[i]), -8)) << i;
    EXPECT_EQ(b[i], bfloat16_to_float(float_to_bfloat16(b[i]))) << i;
  }
}

// scale = max |row| / 127; q = round(w / scale) (halves away from zero), clamped to +-127; the
// largest magnitude maps to +-127; a zero row has scale 0 and zeros, never NaN.
TEST(PackWeights, Int8ScalesPerChannel) {
  // Row 0: max 127 so scale 1 and the ties 2.5 / -2.5 are exact. Row 1: zeros. Row 2: a
  // negative maximum. Row 3: values so small that max / 127 underflows to 0.
  const std::vector<float> in = {2.5f, -2.5f, 127.f, 0.4f,  0.f,    0.f, 0.f, 0.f,
                                 1.f,  -4.f,  2.f,   0.01f, 1e-45f, 0.f, 0.f, -1e-45f};
  const PackedWeights p = pack_weights(Tensor::from_vector(in, {4, 4}), WeightFormat::int8);
  EXPECT_EQ(p.scales()[0], 1.f);
  EXPECT_EQ(p.scales()[1], 0.f);
  EXPECT_EQ(p.scales()[2], 4.f / 127);
  EXPECT_EQ(p.scales()[3], 0.f);
  for (int64_t n = 4; n < 16; ++n) EXPECT_EQ(p.scales()[n], 0.f);  // padding channels
  const std::vector<float> u = unpack_weights(p).to_vector<float>();
  const float s2 = 4.f / 127;
  const std::vector<float> expect = {3.f,
                                     -3.f,
                                     127.f,
                                     0.f,
                                     0.f,
                                     0.f,
                                     0.f,
                                     0.f,
                                     float(32 * double(s2)),
                                     float(-127 * double(s2)),
                                     float(64 * double(s2)),
                                     0.f,
                                     0.f,
                                     0.f,
                                     0.f,
                                     0.f};
  EXPECT_EQ(u, expect);
  EXPECT_EQ(p.bytes(), size_t(16 * 4 + 16 * 4));  // one panel of 4 k, plus 16 scales
  // Zero rows through the kernels: exactly the bias, no NaN.
  const Operands o = make_operands(3, 4, 4, false, 9);
  for (WeightKernel k : kKernels) {
    if (!cpu::weight_kernel_supported(k, WeightFormat::int8)) continue;
    const Tensor y = run(o, p, k, true, false);
    for (int64_t b = 0; b < 3; ++b) {
      EXPECT_EQ(y.data<float>()[b * o.ldy + 1], o.bias.data<float>()[1]);
      EXPECT_EQ(y.data<float>()[b * o.ldy + 3], o.bias.data<float>()[3]);
    }
  }
  // Random rows: the error of each weight is at most half its row's scale, and the row maximum
  // is exact up to the scale's own rounding.
  const Tensor w = random({37, 29}, DType::f32, 4);
  const PackedWeights q = pack_weights(w, WeightFormat::int8);
  const std::vector<float> a = w.to_vector<float>(), b = unpack_weights(q).to_vector<float>();
  for (int64_t n = 0; n < 37; ++n)
    for (int64_t k = 0; k < 29; ++k)
      EXPECT_LE(std::abs(b[n * 29 + k] - a[n * 29 + k]), q.scales()[n] * 0.5001f) << n << "," << k;
}
