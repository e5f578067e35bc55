// AdamW (Loshchilov & Hutter 2019): Adam with bias correction and decoupled weight decay,
// p <- p - lr*wd*p - lr * m_hat / (sqrt(v_hat) + eps), as torch.optim.AdamW.
#pragma once
#include "rill/optim/optimizer.h"

namespace rill::optim {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, double lr, AdamWOptions opt = {});

 protected:
  void update(const std::string& name, Tensor& p, const Tensor& g, double wd, int64_t t) override;

 private:
  AdamWOptions opt_;
};

}  // namespace rill::optim
