// The AVX-512 build of the vec_math kernels: 16 floats / 8 doubles per vector, math from glibc's
// libmvec (_ZGVeN16v_* / _ZGVeN8v_*, the x86-64 vector function ABI's AVX-512 variants). Only
// this region is compiled for AVX-512, under a pushed `#pragma GCC target`; everything in it has
// internal linkage, so no AVX-512 code can stand in for a baseline function elsewhere. It runs
// only where vec_math.cpp found AVX-512 at run time.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "rill/backend/cpu/vec_math_isa.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl")
// The kernels' lambdas (all captureless ones) get an implicit conversion to a function pointer
// that g++ declares without the target and warns about (-Wpsabi); it is never used, and nothing
// here has external linkage, so no __m512 crosses an ABI boundary.
// GCC 12's own AVX-512 intrinsics (_mm512_undefined_*, `__Y = __Y`) trip -Wuninitialized once
// they are inlined here (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// libmvec's entry points (glibc >= 2.35; no header declares them for direct calls).
extern "C" {
__m512 _ZGVeN16v_expf(__m512);
__m512 _ZGVeN16v_expm1f(__m512);
__m512 _ZGVeN16v_logf(__m512);
__m512 _ZGVeN16v_log1pf(__m512);
__m512 _ZGVeN16v_tanhf(__m512);
__m512 _ZGVeN16v_erfcf(__m512);
__m512d _ZGVeN8v_exp(__m512d);
__m512d _ZGVeN8v_expm1(__m512d);
__m512d _ZGVeN8v_log(__m512d);
__m512d _ZGVeN8v_log1p(__m512d);
__m512d _ZGVeN8v_tanh(__m512d);
__m512d _ZGVeN8v_erfc(__m512d);
}

namespace rill::cpu::avx512 {
namespace {

struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int64_t W = 16;
  static constexpr int kMantissaBits = 23;
  static constexpr double kExpZeroBelow = -104, kExpm1MinusOneBelow = -18;
  static M first(int64_t r) { return static_cast<M>((1u << r) - 1); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V load_partial(const T* p, int64_t r, T fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first(r), p);
  }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_partial(T* p, V v, int64_t r) { _mm512_mask_storeu_ps(p, first(r), v); }
  static V set1(T v) { return _mm512_set1_ps(v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V abs(V x) { return _mm512_abs_ps(x); }
  static V neg(V x) { return _mm512_xor_ps(x, _mm512_set1_ps(-0.0f)); }
  static M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }  // m ? a : b
  static V max(V a, V b) { return _mm512_max_ps(a, b); }                    // b where either is NaN
  static T reduce_add(V v) { return _mm512_reduce_add_ps(v); }
  static T reduce_max(V v) { return _mm512_reduce_max_ps(v); }
  static V exp(V x) { return _ZGVeN16v_expf(x); }
  static V expm1(V x) { return _ZGVeN16v_expm1f(x); }
  static V log(V x) { return _ZGVeN16v_logf(x); }
  static V log1p(V x) { return _ZGVeN16v_log1pf(x); }
  static V tanh(V x) { return _ZGVeN16v_tanhf(x); }
  static V erfc(V x) { return _ZGVeN16v_erfcf(x); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int64_t W = 8;
  static constexpr int kMantissaBits = 52;
  static constexpr double kExpZeroBelow = -746, kExpm1MinusOneBelow = -38;
  static M first(int64_t r) { return static_cast<M>((1u << r) - 1); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V load_partial(const T* p, int64_t r, T fill) {
    return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), first(r), p);
  }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void store_partial(T* p, V v, int64_t r) { _mm512_mask_storeu_pd(p, first(r), v); }
  static V set1(T v) { return _mm512_set1_pd(v); }
  static V zero() { return _mm512_setzero_pd(); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  static V abs(V x) { return _mm512_abs_pd(x); }
  static V neg(V x) { return _mm512_xor_pd(x, _mm512_set1_pd(-0.0)); }
  static M gt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static M lt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static M ge(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_pd(m, b, a); }
  static V max(V a, V b) { return _mm512_max_pd(a, b); }
  static T reduce_add(V v) { return _mm512_reduce_add_pd(v); }
  static T reduce_max(V v) { return _mm512_reduce_max_pd(v); }
  static V exp(V x) { return _ZGVeN8v_exp(x); }
  static V expm1(V x) { return _ZGVeN8v_expm1(x); }
  static V log(V x) { return _ZGVeN8v_log(x); }
  static V log1p(V x) { return _ZGVeN8v_log1p(x); }
  static V tanh(V x) { return _ZGVeN8v_tanh(x); }
  static V erfc(V x) { return _ZGVeN8v_erfc(x); }
};

#include "rill/backend/cpu/vec_math_kernels-inl.h"

constexpr VecTable<float> kTableF32 = Kernels<F32>::table();
constexpr VecTable<double> kTableF64 = Kernels<F64>::table();

}  // namespace
}  // namespace rill::cpu::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options

namespace rill::cpu::avx512 {
const VecTable<float>& table_f32() { return kTableF32; }
const VecTable<double>& table_f64() { return kTableF64; }
}  // namespace rill::cpu::avx512
