// AdamW with decoupled weight decay and bias correction, one fused loop per parameter.
#include "rill/optim/adamw.h"

#include <cmath>

namespace rill::optim {

AdamW::AdamW(std::vector<ParamGroup> groups, double lr, AdamWOptions opt)
    : Optimizer(std::move(groups), lr), opt_(opt) {}

void AdamW::update(const std::string& name, Tensor& p, const Tensor& g, double wd, int64_t t) {
  Tensor m = slot("exp_avg", name, p.shape(), p.dtype());
  Tensor v = slot("exp_avg_sq", name, p.shape(), p.dtype());
  const double bc1 = 1 - std::pow(opt_.beta1, t), bc2 = 1 - std::pow(opt_.beta2, t);
  const double step = lr() / bc1, sqrt_bc2 = std::sqrt(bc2), decay = 1 - lr() * wd;
  RILL_DISPATCH_FLOAT(p.dtype(), "adamw", T, {
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* mp = m.data<T>();
    T* vp = v.data<T>();
    const T b1 = T(opt_.beta1), b2 = T(opt_.beta2), eps = T(opt_.eps);
    const int64_t n = p.numel();
    // clang-format off
_Pragma("omp parallel for simd schedule(static) if (n > 65536)")
    for (int64_t i = 0; i < n; ++i) {
      // clang-format on
      mp[i] = b1 * mp[i] + (T(1) - b1) * gp[i];
      vp[i] = b2 * vp[i] + (T(1) - b2) * gp[i] * gp[i];
      pp[i] = pp[i] * T(decay) - T(step) * mp[i] / (std::sqrt(vp[i]) / T(sqrt_bc2) + eps);
    }
  });
}

}  // namespace rill::optim
