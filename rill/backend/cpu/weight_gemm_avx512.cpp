// The AVX-512 build of the weight_gemm kernels: 16 floats per vector, so a panel is one zmm.
// Tiles: up to 6 rows x 4 panels or up to 12 rows x 2 panels (24 zmm accumulators of 32), the
// x values as embedded broadcasts ({1to16}) straight from the packed row block. bf16 also has a
// VDPBF16PS kernel (AVX512_BF16) on x split into three bf16 parts. Only this region is compiled
// for AVX-512, under a pushed `#pragma GCC target`; everything in it has internal linkage, and it
// runs only where weight_gemm.cpp found the CPU able to.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "rill/backend/cpu/weight_gemm_isa.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16")
// GCC 12's own AVX-512 intrinsics trip -Wuninitialized once inlined (GCC PR 105593); the
// accumulator arrays are written before they are read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"

namespace rill::cpu::avx512 {
namespace {

struct S {
  using V = __m512;
  static constexpr int L = 16;
  // Tile shapes (rows x panels), at most 24 accumulators: up to 4 rows x 4 panels (B = 1 keeps
  // four independent FMA chains), up to 12 x 2, up to 24 x 1. Row blocks of at most 8 rows (8 x
  // 2 tiles; the dot kernel, whose x is packed, up to 24): a tile reads x from its rows, and more
  // row pointers than that no longer fit in registers. Measured at B = 16 and 64 from L3 (f32,
  // one thread, GFLOP/s, best of 21): blocks of 8 / 12 / 24 rows 121-128 / 121-127 / 101-113 at
  // B = 16 and 154-159 / 147-151 / 95-118 at B = 64; int8 likewise.
  static constexpr int kMrA = 4, kNpanA = 4;
  static constexpr int kMrB = 12, kNpanB = 2;
  static constexpr bool kBf16OnePass = true;  // see bf16_pair
  static constexpr int kMrMax = 24;

  static __mmask16 first(int m) { return static_cast<__mmask16>((1u << m) - 1); }
  static V zero() { return _mm512_setzero_ps(); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_n(const float* p, int m) { return _mm512_maskz_loadu_ps(first(m), p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, V v, int m) { _mm512_mask_storeu_ps(p, first(m), v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V load_i8(const int8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  // 16 lanes of bf16 pairs (k = 2i in the low half, 2i + 1 in the high half) as f32: the even
  // k shifted up, the odd k masked.
  static V bf16_even(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(p), 16));
  }
  static V bf16_odd(const uint16_t* p) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_loadu_si512(p), _mm512_set1_epi32(int(0xFFFF0000u))));
  }

  // VDPBF16PS: per pair i, lane n gets x[2i] W[n,2i] + x[2i+1] W[n,2i+1] for each of the three
  // parts of x (hi, mid, lo; their sum is x to within 2^-24 |x|), in that order. xp holds the
  // parts as dword pairs, plane by plane (c.plane_stride apart), k-pair-major within a block.
  template <int MR, int NPAN>
  static void dot_tile(const WeightGemmCall& c, const float* xp, int64_t p, V (&acc)[MR][NPAN]) {
    const int64_t K2 = (c.K + 1) / 2;
    const int32_t* x32 = reinterpret_cast<const int32_t*>(xp);
    const int64_t ps = c.plane_stride;
    const uint16_t* w[NPAN];
#pragma GCC unroll 8
    for (int q = 0; q < NPAN; ++q)
      w[q] = static_cast<const uint16_t*>(c.panels) + (p + q) * K2 * 32;
    for (int64_t i = 0; i < K2; ++i) {
      __m512bh wv[NPAN];
#pragma GCC unroll 8
      for (int q = 0; q < NPAN; ++q) wv[q] = (__m512bh)_mm512_loadu_si512(w[q] + i * 32);
#pragma GCC unroll 4
      for (int part = 0; part < 3; ++part)
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) {
          const __m512bh xb = (__m512bh)_mm512_set1_epi32(x32[part * ps + i * MR + r]);
#pragma GCC unroll 8
          for (int j = 0; j < NPAN; ++j) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], xb, wv[j]);
        }
    }
  }
};

#include "rill/backend/cpu/weight_gemm_kernels-inl.h"

const WeightKernels kKernels = {&Impl<S>::panels<Fmt::f32>,
                                &Impl<S>::panels<Fmt::bf16>,
                                &Impl<S>::panels<Fmt::int8>,
                                &Impl<S>::panels<Fmt::bf16_dot>,
                                {8, 8, 8, S::kMrMax}};

}  // namespace
}  // namespace rill::cpu::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options

namespace rill::cpu::avx512 {
const WeightKernels& weight_kernels() { return kKernels; }
}  // namespace rill::cpu::avx512
