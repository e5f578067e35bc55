// Vectorised transcendental math for the cpu backend: array kernels for the unary ops that call
// exp / log / tanh / erf per element, and the row pieces of the softmax family, each built for
// AVX2+FMA (the build's x86-64-v3 baseline) and AVX-512 and chosen at run time.
//
// The math itself comes from SLEEF (Debian's libsleef-dev 3.5.1, 1.0-ulp "u10" functions). SLEEF
// rather than Highway's contrib/math: Highway 1.0.3 has exp, log, tanh but no erf, and GELU in
// its exact form needs erf. SLEEF has erf, exp, expm1, log, log1p, tanh in float and double for
// both AVX2 and AVX-512, as plain C functions we call from our own loops.
//
// The ISA is detected once (AVX-512 F/DQ/BW/VL present, or AVX2); the environment variable
// RILL_ISA=avx2 forces the AVX2 path (RILL_ISA=avx512 asks for AVX-512 and falls back to AVX2,
// with a warning, where the CPU lacks it). IsaOverride switches paths inside one process (tests,
// benchmarks). Results on one ISA do not depend on the thread count; the two ISAs may differ in
// the last bits (different vector widths give different summation trees in the row sums).
#pragma once
#include <cstdint>

#include "rill/backend/elementwise_math.h"

namespace rill::cpu {

enum class Isa { avx2, avx512 };

const char* isa_name(Isa isa);
// Whether this CPU can run `isa` (AVX2 always: it is the build's baseline).
bool isa_supported(Isa isa);
// The path the kernels take now.
Isa active_isa();

// Forces `isa` for its lifetime (it must be supported); restores the previous choice after.
// Not for use while kernels run on other threads.
class IsaOverride {
 public:
  explicit IsaOverride(Isa isa);
  ~IsaOverride();
  IsaOverride(const IsaOverride&) = delete;
  IsaOverride& operator=(const IsaOverride&) = delete;

 private:
  Isa prev_;
};

// Whether vec_unary / vec_unary_backward handle `op` (the ops whose forward or derivative calls
// a transcendental function); the rest stay on the plain `omp simd` loops, which already vectorise.
bool vec_has_unary(UnaryOp op);
bool vec_has_unary_backward(UnaryOp op);

// y[i] = op(x[i]) for i < n, contiguous; y may equal x.
template <class T>
void vec_unary(UnaryOp op, const UnaryParams& p, const T* x, T* y, int64_t n);
// dx[i] = dy[i] * op'(x[i]) (y, the saved output, is read by no op handled here); dx may equal
// any input.
template <class T>
void vec_unary_backward(UnaryOp op, const UnaryParams& p, const T* x, const T* dy, T* dx,
                        int64_t n);

// Softmax-family row pieces (contiguous rows; each is one fixed summation order per ISA).
// max over x[0..n), NaN elements skipped (as std::max(m, x[i]) skips them); -inf for n == 0.
// Scalar code cannot vectorise this reduction: GCC keeps std::max's NaN order and emits a serial
// chain of vmaxss (4 cycles an element).
template <class T>
T vec_row_max(const T* x, int64_t n);
// sum of exp(x[i] - m); when e is given also stores e[i] = exp(x[i] - m) (e may equal x).
template <class T>
T vec_row_sum_exp(const T* x, T m, int64_t n, T* e);
// y[i] = scale * exp((x[i] - a) - b); y may equal x.
template <class T>
void vec_scaled_exp(const T* x, T a, T b, T scale, T* y, int64_t n);
// dx[i] = g[i] - exp(y[i]) * s (log_softmax backward); dx may equal g.
template <class T>
void vec_log_softmax_backward(const T* y, const T* g, T s, T* dx, int64_t n);

}  // namespace rill::cpu
