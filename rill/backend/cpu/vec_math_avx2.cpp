// The AVX2+FMA build of the vec_math kernels: 8 floats / 4 doubles per vector, math from glibc's
// libmvec (_ZGVdN8v_* / _ZGVdN4v_*, the x86-64 vector function ABI's AVX2 variants). AVX2+FMA
// is the build's baseline (x86-64-v3), so no target pragma is needed; this path runs where the
// CPU has no AVX-512, or when RILL_ISA=avx2 forces it.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "rill/backend/cpu/vec_math_isa.h"

// libmvec's entry points (glibc >= 2.35; no header declares them for direct calls).
extern "C" {
__m256 _ZGVdN8v_expf(__m256);
__m256 _ZGVdN8v_expm1f(__m256);
__m256 _ZGVdN8v_logf(__m256);
__m256 _ZGVdN8v_log1pf(__m256);
__m256 _ZGVdN8v_tanhf(__m256);
__m256 _ZGVdN8v_erfcf(__m256);
__m256d _ZGVdN4v_exp(__m256d);
__m256d _ZGVdN4v_expm1(__m256d);
__m256d _ZGVdN4v_log(__m256d);
__m256d _ZGVdN4v_log1p(__m256d);
__m256d _ZGVdN4v_tanh(__m256d);
__m256d _ZGVdN4v_erfc(__m256d);
}

namespace rill::cpu::avx2 {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  using M = __m256;  // a compare result: all-ones lanes where true
  static constexpr int64_t W = 8;
  static constexpr int kMantissaBits = 23;
  static constexpr double kExpZeroBelow = -104, kExpm1MinusOneBelow = -18;
  // Partial loads and stores go through a small buffer: the tail is at most W - 1 elements.
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V load_partial(const T* p, int64_t r, T fill) {
    alignas(32) T buf[W];
    for (int64_t k = 0; k < W; ++k) buf[k] = k < r ? p[k] : fill;
    return _mm256_load_ps(buf);
  }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_partial(T* p, V v, int64_t r) {
    alignas(32) T buf[W];
    _mm256_store_ps(buf, v);
    for (int64_t k = 0; k < r; ++k) p[k] = buf[k];
  }
  static V set1(T v) { return _mm256_set1_ps(v); }
  static V zero() { return _mm256_setzero_ps(); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V abs(V x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
  static V neg(V x) { return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f)); }
  static M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static V select(M m, V a, V b) { return _mm256_blendv_ps(b, a, m); }  // m ? a : b
  static V max(V a, V b) { return _mm256_max_ps(a, b); }                // b where either is NaN
  static T reduce_add(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static T reduce_max(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static V exp(V x) { return _ZGVdN8v_expf(x); }
  static V expm1(V x) { return _ZGVdN8v_expm1f(x); }
  static V log(V x) { return _ZGVdN8v_logf(x); }
  static V log1p(V x) { return _ZGVdN8v_log1pf(x); }
  static V tanh(V x) { return _ZGVdN8v_tanhf(x); }
  static V erfc(V x) { return _ZGVdN8v_erfcf(x); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  using M = __m256d;
  static constexpr int64_t W = 4;
  static constexpr int kMantissaBits = 52;
  static constexpr double kExpZeroBelow = -746, kExpm1MinusOneBelow = -38;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V load_partial(const T* p, int64_t r, T fill) {
    alignas(32) T buf[W];
    for (int64_t k = 0; k < W; ++k) buf[k] = k < r ? p[k] : fill;
    return _mm256_load_pd(buf);
  }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void store_partial(T* p, V v, int64_t r) {
    alignas(32) T buf[W];
    _mm256_store_pd(buf, v);
    for (int64_t k = 0; k < r; ++k) p[k] = buf[k];
  }
  static V set1(T v) { return _mm256_set1_pd(v); }
  static V zero() { return _mm256_setzero_pd(); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V abs(V x) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), x); }
  static V neg(V x) { return _mm256_xor_pd(x, _mm256_set1_pd(-0.0)); }
  static M gt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static M lt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static M ge(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static V select(M m, V a, V b) { return _mm256_blendv_pd(b, a, m); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static T reduce_add(V v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static T reduce_max(V v) {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static V exp(V x) { return _ZGVdN4v_exp(x); }
  static V expm1(V x) { return _ZGVdN4v_expm1(x); }
  static V log(V x) { return _ZGVdN4v_log(x); }
  static V log1p(V x) { return _ZGVdN4v_log1p(x); }
  static V tanh(V x) { return _ZGVdN4v_tanh(x); }
  static V erfc(V x) { return _ZGVdN4v_erfc(x); }
};

#include "rill/backend/cpu/vec_math_kernels-inl.h"

constexpr VecTable<float> kTableF32 = Kernels<F32>::table();
constexpr VecTable<double> kTableF64 = Kernels<F64>::table();

}  // namespace
}  // namespace rill::cpu::avx2

namespace rill::cpu::avx2 {
const VecTable<float>& table_f32() { return kTableF32; }
const VecTable<double>& table_f64() { return kTableF64; }
}  // namespace rill::cpu::avx2
