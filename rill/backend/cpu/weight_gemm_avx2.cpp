// The AVX2 + FMA build of the weight_gemm kernels (the build's x86-64-v3 baseline; this is what a
// CPU without AVX-512, such as a Zen 4 VM, runs): 8 floats per vector, so a panel is two ymm.
// Tiles: up to 3 rows x 2 panels or up to 6 rows x 1 panel (12 ymm accumulators of 16, leaving
// room for the panel's weights and one broadcast). Compiled under a pushed target pragma like
// the AVX-512 build, so that both object files have the same structure; AVX2 needs no check.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "rill/backend/cpu/weight_gemm_isa.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

namespace rill::cpu::avx2 {
namespace {

struct S {
  using V = __m256;
  static constexpr int L = 8;
  // Tile shapes: 1 row x 4 panels (8 accumulators: eight FMA chains, so that B = 1 is not bound
  // by FMA latency where L3 is fast, e.g. about 60 GB/s a core on Zen 4), 2 rows x 2 panels, else
  // up to 6 rows x 1 panel (12 accumulators, 2 weight vectors, a broadcast); bf16 up to 5 rows,
  // as its shift needs the raw pairs in a register (VEX shifts take no memory operand) and 6
  // rows spill.
  static constexpr int kMrA = 1, kNpanA = 4;
  static constexpr int kMrB = 2, kNpanB = 2;
  static constexpr bool kBf16OnePass = false;  // see bf16_pair
  static constexpr int kMrMax = 6;

  // Lane masks for maskload / maskstore: the first m lanes set.
  static __m256i first(int m) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_n(const float* p, int m) { return _mm256_maskload_ps(p, first(m)); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, V v, int m) { _mm256_maskstore_ps(p, first(m), v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V load_i8(const int8_t* p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  // 8 lanes of bf16 pairs (k = 2i in the low half, 2i + 1 in the high half) as f32: the even
  // k shifted up, the odd k masked.
  static V bf16_even(const uint16_t* p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), 16));
  }
  static V bf16_odd(const uint16_t* p) {
    return _mm256_castsi256_ps(
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                         _mm256_set1_epi32(int(0xFFFF0000u))));
  }
};

#include "rill/backend/cpu/weight_gemm_kernels-inl.h"

const WeightKernels kKernels = {&Impl<S>::panels<Fmt::f32>,
                                &Impl<S>::panels<Fmt::bf16>,
                                &Impl<S>::panels<Fmt::int8>,
                                nullptr,
                                {S::kMrMax, 5, S::kMrMax, 0}};

}  // namespace
}  // namespace rill::cpu::avx2

#pragma GCC diagnostic pop
#pragma GCC pop_options

namespace rill::cpu::avx2 {
const WeightKernels& weight_kernels() { return kKernels; }
}  // namespace rill::cpu::avx2
