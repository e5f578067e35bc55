// Adafactor (Shazeer & Stern 2018), the optimiser the Block-Recurrent Transformer trains with:
// second moments factored into row and column statistics for tensors of rank >= 2, update
// clipping by RMS, optional relative step size and momentum. Semantics follow the widely used
// transformers.Adafactor (its defaults below).
#pragma once
#include "rill/optim/optimizer.h"

namespace rill::optim {

struct AdafactorOptions {
  double eps1 = 1e-30;          // added to g^2
  double eps2 = 1e-3;           // floor of the parameter scale
  double clip_threshold = 1.0;  // update RMS bound
  double decay_rate = -0.8;     // beta2_t = 1 - t^decay_rate
  double beta1 = 0;             // 0: no momentum
  bool scale_parameter = true;  // lr *= max(eps2, RMS(p))
  bool relative_step = true;    // lr = min(1e-2, 1/sqrt(t)) (the lr given is then ignored)
  bool warmup_init = false;     // relative step starts at 1e-6 * t
};

class Adafactor : public Optimizer {
 public:
  Adafactor(std::vector<ParamGroup> groups, double lr, AdafactorOptions opt = {});

 protected:
  void update(const std::string& name, Tensor& p, const Tensor& g, double wd, int64_t t) override;

 private:
  double lr_value(int64_t t, double rms_p) const;  // the step size actually applied at step t
  AdafactorOptions opt_;
};

}  // namespace rill::optim
