// SGD with momentum and weight decay.
#include "rill/optim/sgd.h"

namespace rill::optim {

SGD::SGD(std::vector<ParamGroup> groups, double lr, SGDOptions opt)
    : Optimizer(std::move(groups), lr), opt_(opt) {
  RILL_CHECK(!opt.nesterov || (opt.momentum > 0 && opt.dampening == 0),
             "[sgd] Nesterov needs momentum > 0 and no dampening");
}

void SGD::update(const std::string& name, Tensor& p, const Tensor& g, double wd, int64_t t) {
  const bool use_momentum = opt_.momentum != 0;
  const bool first = !has_slot("momentum", name);  // the buffer starts as the first gradient
  Tensor buf = use_momentum ? slot("momentum", name, p.shape(), p.dtype()) : Tensor();
  RILL_DISPATCH_FLOAT(p.dtype(), "sgd", T, {
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* bp = use_momentum ? buf.data<T>() : nullptr;
    const T mu = T(opt_.momentum), damp = T(opt_.dampening), lr = T(this->lr()), w = T(wd);
    const int64_t n = p.numel();
    for (int64_t i = 0; i < n; ++i) {
      T d = gp[i] + w * pp[i];
      if (bp) {
        bp[i] = first ? d : mu * bp[i] + (T(1) - damp) * d;
        d = opt_.nesterov ? d + mu * bp[i] : bp[i];
      }
      pp[i] -= lr * d;
    }
  });
}

}  // namespace rill::optim
