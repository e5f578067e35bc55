// Reference weight_gemm (see weight_gemm.h): deliberately the plainest loop.
#include "rill/backend/ref/weight_gemm.h"

#include <vector>

#include "rill/core/error.h"

namespace rill::ref {

void weight_gemm(const float* x, int64_t B, int64_t ldx, const PackedWeights& w, const float* bias,
                 float* y, int64_t ldy, bool accumulate) {
  const int64_t N = w.n(), K = w.k();
  RILL_CHECK(B >= 0 && ldx >= K && ldy >= N,
             "[weight_gemm] bad sizes: B={} ldx={} ldy={} for W [{}, {}]", B, ldx, ldy, N, K);
  std::vector<double> wd(size_t(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) wd[n * K + k] = w.value(n, k);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(x[b * ldx + k]) * wd[n * K + k];
      if (bias) s += bias[n];
      if (accumulate) s += y[b * ldy + n];
      y[b * ldy + n] = static_cast<float>(s);
    }
}

}  // namespace rill::ref
