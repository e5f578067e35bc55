// Vectorised transcendental math for the cpu backend: array kernels for the unary ops that call
// exp / log / tanh / erf per element, and the row pieces of the softmax family, each built for
// AVX2+FMA (the build's x86-64-v3 baseline) and AVX-512 and chosen at run time.
//
// The math comes from glibc's libmvec (libc6-dev, glibc 2.36 here: exp, expm1, log, log1p, tanh,
// erfc in float and double, AVX2 and AVX-512 variants, at most 4 ulp), called from our own loops.
// Measured against the two other candidates on this machine (one thread, in cache, AVX-512 f32,
// ns per element): exp 0.26 vs SLEEF 3.5.1 0.36; tanh 0.35 vs 0.63 (u35) / 1.98 (u10); expm1 0.30
// vs 1.41; erfc 0.66 vs 3.69 (f64: 1.65 vs 12.9). SLEEF's double-float erf/erfc would cap GELU
// (erf form, rill's default) at a few GB/s; Highway 1.0.3's contrib/math has no erf at all.
// libmvec's one weakness, a scalar fallback for special lanes (overflow, underflow, inf, NaN),
// is kept off the common ones (exp of -inf, masked logits) in vec_math_kernels-inl.h.
//
// The path follows the cpu backend's SIMD level (cpu/isa.h: detected once, RILL_ISA=avx2 forces
// AVX2, SimdLevelOverride switches inside one process). Results on one path do not depend on the
// thread count; the two paths may differ in the last bits (libmvec's AVX2 and AVX-512 variants
// are different code, and different vector widths give different summation trees in row sums).
#pragma once
#include <cstdint>

#include "rill/backend/elementwise_math.h"

namespace rill::cpu {

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
