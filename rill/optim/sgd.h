// SGD with momentum, dampening, Nesterov and (coupled, L2) weight decay, as torch.optim.SGD.
#pragma once
#include "rill/optim/optimizer.h"

namespace rill::optim {

struct SGDOptions {
  double momentum = 0, dampening = 0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, double lr, SGDOptions opt = {});

 protected:
  void update(const std::string& name, Tensor& p, const Tensor& g, double wd, int64_t t) override;

 private:
  SGDOptions opt_;
};

}  // namespace rill::optim
