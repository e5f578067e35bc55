// Naive f64 references shared by the ReLiT and AReLiT tests (gated_reference.h).
#include "tests/support/gated_reference.h"

#include "rill/autograd/grad_mode.h"

namespace rill::testing {

Features features_of(const GatedFeatures& m, const Tensor& x) {
  NoGradGuard no_grad;
  GatedFeatureTensors g = m.forward(x);
  return {x.size(0),
          m.heads(),
          x.size(1),
          m.head_dim(),
          m.feature_dim(),
          g.phi_k.to_vector<double>(),
          g.phi_q.to_vector<double>(),
          g.v.to_vector<double>(),
          g.beta.to_vector<double>(),
          g.gamma.to_vector<double>()};
}

Tensor project(const GatedFeatures& m, const std::vector<double>& o, const Features& f) {
  NoGradGuard no_grad;
  return m.out(Tensor::from_vector(o, {f.b, f.t, f.h, f.d}));
}

std::vector<double> naive_relit(const Features& f, double eps) {
  std::vector<double> o(f.b * f.t * f.h * f.d, 0.0);
  for (int64_t b = 0; b < f.b; ++b)
    for (int64_t h = 0; h < f.h; ++h) {
      std::vector<double> C(f.d * f.f, 0.0), s(f.f, 0.0);
      for (int64_t t = 0; t < f.t; ++t) {
        const int64_t row = (b * f.h + h) * f.t + t;
        const double* beta = &f.beta[row * f.d];
        const double* vv = &f.v[row * f.d];
        const double* gamma = &f.gamma[row * f.f];
        const double* pk = &f.phi_k[row * f.f];
        const double* pq = &f.phi_q[row * f.f];
        double den = 0;
        for (int64_t j = 0; j < f.f; ++j) {
          s[j] = (1 - gamma[j]) * s[j] + gamma[j] * pk[j];
          den += s[j] * pq[j];
        }
        for (int64_t i = 0; i < f.d; ++i) {
          double num = 0;
          for (int64_t j = 0; j < f.f; ++j) {
            double& cij = C[i * f.f + j];
            cij = (1 - beta[i]) * (1 - gamma[j]) * cij + beta[i] * vv[i] * gamma[j] * pk[j];
            num += cij * pq[j];
          }
          o[((b * f.t + t) * f.h + h) * f.d + i] = num / (den + eps);
        }
      }
    }
  return o;
}

}  // namespace rill::testing
