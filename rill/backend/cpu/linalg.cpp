// LAPACK linear solve (see linalg.h). LAPACK works on column-major matrices and overwrites its
// operands (a with its LU factors, b with the solution), so the row-major inputs are copied once
// into column-major scratch buffers, O(n^2 + n m) next to the O(n^3) factorisation, and the
// solution is transposed back into x.
#include "rill/backend/cpu/linalg.h"

#include <climits>
#include <vector>

// LAPACK's Fortran entry points, declared by hand: Debian's OpenBLAS exports them but ships no
// lapacke.h (and the C wrapper would only add a layer). Fortran passes every argument by
// reference; OpenBLAS's LP64 build takes 32-bit integers. gesv has no character arguments, so
// there are no hidden string-length parameters to declare.
extern "C" {
void sgesv_(const int* n, const int* nrhs, float* a, const int* lda, int* ipiv, float* b,
            const int* ldb, int* info);
void dgesv_(const int* n, const int* nrhs, double* a, const int* lda, int* ipiv, double* b,
            const int* ldb, int* info);
}

namespace rill::cpu {

namespace {

void gesv(int n, int nrhs, float* a, int* ipiv, float* b, int* info) {
  sgesv_(&n, &nrhs, a, &n, ipiv, b, &n, info);
}
void gesv(int n, int nrhs, double* a, int* ipiv, double* b, int* info) {
  dgesv_(&n, &nrhs, a, &n, ipiv, b, &n, info);
}

}  // namespace

void solve(const Tensor& a, const Tensor& b, const Tensor& x, int64_t& zero_pivot) {
  const int64_t n = a.size(0), m = b.size(1);
  zero_pivot = 0;
  if (n == 0 || m == 0) return;  // nothing to write; LAPACK wants lda >= 1
  RILL_CHECK(n <= INT_MAX && m <= INT_MAX,
             "[solve] LAPACK takes 32-bit sizes; got a [{}, {}] and b [{}, {}]", n, n, n, m);
  RILL_DISPATCH_FLOAT(a.dtype(), "solve", T, {
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    std::vector<T> acol(n * n), bcol(n * m);  // column-major: element (i, j) at i + j * n
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) acol[i + j * n] = ap[i * n + j];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) bcol[i + j * n] = bp[i * m + j];
    std::vector<int> ipiv(n);
    int info = 0;
    gesv(int(n), int(m), acol.data(), ipiv.data(), bcol.data(), &info);
    // info < 0 would name an illegal argument: a bug here, not the caller's.
    RILL_CHECK(info >= 0, "[solve] LAPACK ?gesv rejected argument {} (n {}, m {})", -info, n, m);
    if (info > 0) {
      zero_pivot = info;
      return;
    }
    T* xp = x.data<T>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j) xp[i * m + j] = bcol[i + j * n];
  });
}

}  // namespace rill::cpu
