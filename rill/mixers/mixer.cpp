// Input checks shared by every mixer.
#include "rill/mixers/mixer.h"

namespace rill {

void Mixer::check_forward_input(const Tensor& x) const {
  RILL_CHECK(x.defined() && x.dim() == 3 && x.size(2) == d_model_ && is_floating(x.dtype()),
             "[{}] forward expects x [B, T, {}] (floating), got {}", kind(), d_model_,
             x.defined() ? fmt::format("{} {}", dtype_name(x.dtype()), shape_str(x.shape()))
                         : "undefined");
}

void Mixer::check_step_input(const Tensor& x_t) const {
  RILL_CHECK(x_t.defined() && x_t.dim() == 2 && x_t.size(1) == d_model_ && is_floating(x_t.dtype()),
             "[{}] step expects x_t [B, {}] (floating), got {}", kind(), d_model_,
             x_t.defined() ? fmt::format("{} {}", dtype_name(x_t.dtype()), shape_str(x_t.shape()))
                           : "undefined");
}

void TensorStepFallback::step(const Tensor& x, const Tensor& y, State& state) {
  Tensor(y).copy_(mixer_.step(x, state));
}

}  // namespace rill
