// The one entry point for every dense matrix product on the CPU: a row-major GEMM that sends f32
// to the selected provider (oneDNN or OpenBLAS) and f64 to OpenBLAS.
#pragma once
#include <cstdint>

namespace rill::cpu {

enum class GemmProvider { onednn, openblas };

// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m x k, op(B) is k x n, C is m x n.
// A is stored m x k (k x m when trans_a) with row stride lda; likewise B and C. As in BLAS,
// beta == 0 means C is only written, never read (NaN in C does not leak through).
// Both providers run on the OpenMP pool with omp_get_max_threads() threads, and single-threaded
// when called inside a parallel region: never call this from one expecting it to be threaded.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// f64 always goes to OpenBLAS (oneDNN has no dgemm).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc);

// The f32 provider. The default is the one measured fastest here (see gemm.cpp); the environment
// variable RILL_GEMM=onednn|openblas overrides it at start-up.
GemmProvider gemm_provider();
void set_gemm_provider(GemmProvider p);
const char* gemm_provider_name(GemmProvider p);

}  // namespace rill::cpu
