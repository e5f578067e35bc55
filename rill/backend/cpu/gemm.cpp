// Row-major GEMM over oneDNN (dnnl_sgemm) and OpenBLAS's OpenMP build (cblas_?gemm). Both run on
// libgomp, so rill, oneDNN and OpenBLAS share one thread pool.
//
// Default f32 provider: oneDNN, measured faster here (Zen 5, 2 threads, bench/bench_matmul,
// medians of 5 repetitions, direct library calls, GFLOP/s):
//   env as CI has it (OPENBLAS_CORETYPE=Haswell, so OpenBLAS runs its AVX2 kernel):
//     square 256..4096: oneDNN 376-412, OpenBLAS 146-203 (1.9-2.6x);
//     M x 1024 x 1024 with M = 16/64/256: oneDNN 302/344/300, OpenBLAS 112/157/180.
//   OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (OpenBLAS picks Cooperlake, AVX-512):
//     square 256..4096: oneDNN 390/393/385/401/408, OpenBLAS 252/298/326/378/396;
//     M = 16/64/256: oneDNN 303/356/312, OpenBLAS 98/237/316.
// So oneDNN wins everywhere CI runs, and even OpenBLAS's best kernel only ties it on large shapes.
#include "rill/backend/cpu/gemm.h"

#include <cblas.h>
#include <dnnl.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <string>

#include "rill/core/error.h"
#include "rill/core/profiler.h"

namespace rill::cpu {

namespace {

GemmProvider provider_from_env() {
  const char* env = std::getenv("RILL_GEMM");
  if (env == nullptr || *env == '\0') return GemmProvider::onednn;
  const std::string s = env;
  if (s == "onednn") return GemmProvider::onednn;
  if (s == "openblas") return GemmProvider::openblas;
  fail("[gemm] RILL_GEMM must be 'onednn' or 'openblas', got '{}'", s);
}

std::atomic<GemmProvider>& provider_slot() {
  static std::atomic<GemmProvider> slot{provider_from_env()};
  return slot;
}

// Rejects what the libraries would reject (they report through xerbla or a status code, which
// would otherwise be lost), and sizes OpenBLAS's 32-bit ints cannot hold.
void check_args(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                int64_t ldb, int64_t ldc) {
  const int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  RILL_CHECK(m >= 0 && n >= 0 && k >= 0, "[gemm] negative size m={} n={} k={}", m, n, k);
  RILL_CHECK(lda >= std::max<int64_t>(1, a_cols) && ldb >= std::max<int64_t>(1, b_cols) &&
                 ldc >= std::max<int64_t>(1, n),
             "[gemm] leading dims too small: m={} n={} k={} trans_a={} trans_b={} lda={} ldb={} "
             "ldc={}",
             m, n, k, trans_a, trans_b, lda, ldb, ldc);
  for (int64_t v : {m, n, k, lda, ldb, ldc})
    RILL_CHECK(v <= INT_MAX, "[gemm] size {} exceeds the 32-bit BLAS interface", v);
}

// C = beta * C for an empty contraction (k == 0), which the libraries treat unevenly.
template <class T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
}

}  // namespace

GemmProvider gemm_provider() { return provider_slot().load(std::memory_order_relaxed); }
void set_gemm_provider(GemmProvider p) { provider_slot().store(p, std::memory_order_relaxed); }
const char* gemm_provider_name(GemmProvider p) {
  return p == GemmProvider::onednn ? "onednn" : "openblas";
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  ProfileScope scope("gemm f32");
  check_args(trans_a, trans_b, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_c(m, n, beta, c, ldc);
  if (gemm_provider() == GemmProvider::onednn) {
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda,
                                  b, ldb, beta, c, ldc);
    RILL_CHECK(st == dnnl_success, "[gemm] dnnl_sgemm failed with status {} (m={} n={} k={})",
               static_cast<int>(st), m, n, k);
  } else {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                beta, c, static_cast<int>(ldc));
  }
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  check_args(trans_a, trans_b, m, n, k, lda, ldb, ldc);
  if (m == 0 || n == 0) return;
  if (k == 0) return scale_c(m, n, beta, c, ldc);
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

}  // namespace rill::cpu
