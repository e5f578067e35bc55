// y = x W^T (+ bias) (+ y) with packed weights (backend/weights.h): the matrix-vector and skinny
// matrix products of generation, where B rows of x (streams stepping together, 1..64) meet a
// weight matrix that is read once per call for all of them. f32 accumulation in every format.
//
// Kernels (hand-written, chosen at run time by weight_gemm_kernel; the measurements behind the
// choices are in weight_gemm.cpp and bench/bench_weight_gemm.cpp):
//   avx2             AVX2 + FMA (the build baseline), every format; bf16 and int8 converted to f32
//                    in registers (a shift or mask / a sign extension and a convert).
//   avx512           the same at 16 lanes; the default wherever the CPU has AVX-512.
//   avx512_bf16_dot  bf16 only: VDPBF16PS on x split exactly into three bf16 parts. Slower than
//                    avx512 at every B measured, so only weight_gemm_with runs it.
// Deterministic: threads split the output channels, and every output element is one chain of
// FMAs in k order that no tile shape or thread count changes. The avx2 and avx512 kernels give
// the same bits (the same chain per lane); the dot kernel rounds differently (its own chain).
#pragma once
#include <cstdint>

#include "rill/backend/weights.h"

namespace rill::cpu {

enum class WeightKernel { avx2, avx512, avx512_bf16_dot };

const char* weight_kernel_name(WeightKernel k);
// Whether this CPU can run `k` for `format` (the dot kernel is bf16 only and needs AVX512_BF16).
bool weight_kernel_supported(WeightKernel k, WeightFormat format);
// The kernel weight_gemm takes for `format` and B rows at the current SIMD level (cpu/isa.h:
// RILL_ISA=avx2 forces avx2, RILL_ISA=avx512 rules out the dot kernel).
WeightKernel weight_gemm_kernel(WeightFormat format, int64_t B);

// y[b, n] = sum_k x[b, k] W[n, k] (+ bias[n]) (+ y[b, n] when accumulate), for b < B, n < N,
// W the dequantised weights. x is B x K with row stride ldx, y is B x N with row stride ldy
// (they must not overlap); bias is [N] or null. Without accumulate y is only written (NaN in it
// does not leak through). Runs on omp_get_max_threads() threads when the call is large enough,
// and on one inside a parallel region.
void weight_gemm(const float* x, int64_t B, int64_t ldx, const PackedWeights& w, const float* bias,
                 float* y, int64_t ldy, bool accumulate);

// A call runs on several threads when its estimated one-thread time is at least this many
// microseconds: weight_gemm_estimate_us says what a call costs, and below the threshold waking
// a second thread costs more than it saves (the default is measured; see weight_gemm.cpp).
// Settable for benchmarks and tests (0 splits every call with two or more panels).
double weight_gemm_parallel_min_us();
void set_weight_gemm_parallel_min_us(double us);
// The rough one-thread time of a call: its weight bytes at an L3 read rate, or its multiply-adds
// at an FMA rate, whichever is longer (constants for one core of the machines in ENVIRONMENT.md).
double weight_gemm_estimate_us(const PackedWeights& w, int64_t B);

// The same with a given kernel, whatever the dispatch rule says (tests and benchmarks; it must be
// supported).
void weight_gemm_with(WeightKernel kernel, const float* x, int64_t B, int64_t ldx,
                      const PackedWeights& w, const float* bias, float* y, int64_t ldy,
                      bool accumulate);

}  // namespace rill::cpu
