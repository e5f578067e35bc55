// Reference linear solve (see linalg.h): eliminate column by column, always pivoting on the
// largest remaining |entry| of the column (partial pivoting, the textbook way to keep the
// multipliers at most 1 in magnitude), then back-substitute row by row.
#include "rill/backend/ref/linalg.h"

#include <cmath>
#include <utility>
#include <vector>

namespace rill::ref {

void solve(const Tensor& a, const Tensor& b, const Tensor& x, int64_t& zero_pivot) {
  const int64_t n = a.size(0), m = b.size(1);
  zero_pivot = 0;
  RILL_DISPATCH_FLOAT(a.dtype(), "solve", T, {
    // Working copies, row-major: u [n, n] becomes the upper triangle, y [n, m] the transformed
    // right-hand sides; the inputs are never written.
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    std::vector<T> u(ap, ap + n * n), y(bp, bp + n * m);
    for (int64_t k = 0; k < n; ++k) {
      int64_t p = k;
      for (int64_t i = k + 1; i < n; ++i)
        if (std::abs(u[i * n + k]) > std::abs(u[p * n + k])) p = i;
      if (u[p * n + k] == T(0)) {
        zero_pivot = k + 1;
        return;
      }
      if (p != k) {
        for (int64_t j = 0; j < n; ++j) std::swap(u[k * n + j], u[p * n + j]);
        for (int64_t j = 0; j < m; ++j) std::swap(y[k * m + j], y[p * m + j]);
      }
      for (int64_t i = k + 1; i < n; ++i) {
        const T f = u[i * n + k] / u[k * n + k];
        u[i * n + k] = T(0);
        for (int64_t j = k + 1; j < n; ++j) u[i * n + j] -= f * u[k * n + j];
        for (int64_t j = 0; j < m; ++j) y[i * m + j] -= f * y[k * m + j];
      }
    }
    T* xp = x.data<T>();
    for (int64_t i = n - 1; i >= 0; --i)
      for (int64_t j = 0; j < m; ++j) {
        T acc = y[i * m + j];
        for (int64_t c = i + 1; c < n; ++c) acc -= u[i * n + c] * xp[c * m + j];
        xp[i * m + j] = acc / u[i * n + i];
      }
  });
}

}  // namespace rill::ref
