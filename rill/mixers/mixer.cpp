// Input checks shared by every mixer, and the dispatch of a forward with resets.
#include "rill/mixers/mixer.h"

#include "rill/mixers/resets.h"
#include "rill/ops/reduce.h"

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

Tensor Mixer::forward_with_resets(const Tensor& x, State* state, const Tensor& resets) {
  if (!resets.defined()) return forward(x, state);
  check_forward_input(x);
  const std::string who = kind();
  Tensor mask = reset_mask(resets, x.size(0), x.size(1), x.dtype(), who.c_str());
  if (sum(mask).item<double>() == 0) return forward(x, state);
  if (native_resets()) return forward_native_resets(x, state, mask);
  return forward_in_reset_pieces(*this, x, state, mask);
}

Tensor Mixer::forward_native_resets(const Tensor& x, State* state, const Tensor& resets) {
  return forward_in_reset_pieces(*this, x, state, resets);
}

void TensorStepFallback::step(const Tensor& x, const Tensor& y, State& state) {
  Tensor(y).copy_(mixer_.step(x, state));
}

}  // namespace rill
