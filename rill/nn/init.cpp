// Seeded initialisers drawing from the counter-based generator.
#include "rill/nn/init.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "rill/autograd/grad_mode.h"
#include "rill/core/rng.h"

namespace rill::nn {

uint64_t derive_seed(uint64_t seed, uint64_t k) {
  auto r = philox4x32(seed, 0xC0FFEE0000000000ull + k);
  return (static_cast<uint64_t>(r[0]) << 32) | r[1];
}

void normal_(const Tensor& t, double mean, double std, uint64_t seed) {
  NoGradGuard g;
  Tensor r = Tensor::randn(t.shape(), seed, DType::f64);
  double* p = r.data<double>();
  for (int64_t i = 0; i < r.numel(); ++i) p[i] = mean + std * p[i];
  Tensor(t).copy_(r);
}

void uniform_(const Tensor& t, double lo, double hi, uint64_t seed) {
  NoGradGuard g;
  Tensor(t).copy_(Tensor::uniform(t.shape(), lo, hi, seed, DType::f64));
}

namespace {
std::pair<double, double> fans(const Tensor& t) {
  RILL_CHECK(t.dim() >= 2, "[xavier] needs a weight of rank >= 2, got {}", shape_str(t.shape()));
  double receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.shape()[d];
  return {t.shape()[1] * receptive, t.shape()[0] * receptive};
}
}  // namespace

void xavier_uniform_(const Tensor& t, uint64_t seed, double gain) {
  auto [in, out] = fans(t);
  double a = gain * std::sqrt(6.0 / (in + out));
  uniform_(t, -a, a, seed);
}

void xavier_normal_(const Tensor& t, uint64_t seed, double gain) {
  auto [in, out] = fans(t);
  normal_(t, 0.0, gain * std::sqrt(2.0 / (in + out)), seed);
}

void orthogonal_(const Tensor& t, uint64_t seed, double gain) {
  RILL_CHECK(t.dim() >= 2 && t.numel() > 0,
             "[orthogonal] needs a non-empty weight of rank >= 2, got {}", shape_str(t.shape()));
  const int64_t rows = t.shape()[0], cols = t.numel() / rows;
  // n orthonormal vectors of length m (n <= m): rows of W, or its columns when rows > cols.
  const int64_t n = std::min(rows, cols), m = std::max(rows, cols);
  Tensor r = Tensor::randn({n, m}, seed, DType::f64);
  double* v = r.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    double* vi = v + i * m;
    for (int64_t j = 0; j < i; ++j) {  // modified Gram-Schmidt: remove earlier directions
      const double* vj = v + j * m;
      double dot = 0;
      for (int64_t k = 0; k < m; ++k) dot += vi[k] * vj[k];
      for (int64_t k = 0; k < m; ++k) vi[k] -= dot * vj[k];
    }
    double norm = 0;
    for (int64_t k = 0; k < m; ++k) norm += vi[k] * vi[k];
    norm = std::sqrt(norm);
    RILL_CHECK(norm > 1e-12, "[orthogonal] degenerate draw for {}", shape_str(t.shape()));
    for (int64_t k = 0; k < m; ++k) vi[k] /= norm;
  }
  std::vector<double> w(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      w[i * cols + j] = gain * (rows <= cols ? v[i * m + j] : v[j * m + i]);
  NoGradGuard g;
  Tensor(t).copy_(Tensor::from_vector(w, t.shape()));
}

}  // namespace rill::nn
