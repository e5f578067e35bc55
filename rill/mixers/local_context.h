// Local context for any mixer: a short causal mixing of the mixer's input before its
// projections, so that a mixer without positional information (plain linear attention sees a
// bag of tokens) knows the order of the last few tokens.
//   "local": "shift"   token shift as in RWKV: x'_t = mu * x_t + (1 - mu) * x_{t-1}, mu [D]
//                      learned per channel (initialised spread over (0, 1))
//   "local": "convW"   causal depthwise convolution of width W in 2..8, as GLA and Mamba:
//                      x'_t = sum_{j<W} w_j * x_{t-j}, w [W, D] learned (initialised to the
//                      identity: w_0 = 1, the rest 0)
// Both are ops/causal_conv.h (the shift is the width-2 case with w = [mu, 1 - mu]). The state
// carries the last W-1 inputs ("local.prev" [B, W-1, D]) beside the wrapped mixer's own state
// (under "mixer."), so the parallel, chunked and step forms agree and the state stays constant.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "rill/mixers/mixer.h"

namespace rill {

struct LocalContextConfig {
  bool shift = false;  // true: token shift (width 2, one learned mix per channel)
  int64_t width = 2;   // taps, the current token included
};
// Parses the value of "local" ("shift" or "conv2".."conv8"); errors name the mixer.
LocalContextConfig parse_local_context(const nlohmann::json& value, const std::string& mixer);

class LocalContextMixer : public Mixer {
 public:
  LocalContextMixer(const LocalContextConfig& config, std::shared_ptr<Mixer> inner, uint64_t seed,
                    DType dtype);

  State init_state(int64_t batch) const override;
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return inner_->kind(); }
  bool constant_state() const override { return inner_->constant_state(); }
  double mixing_flops_per_token(int64_t context) const override {
    return inner_->mixing_flops_per_token(context) + 2.0 * config_.width * d_model();
  }
  size_t state_bytes(int64_t context) const override {
    return inner_->state_bytes(context) +
           size_t(config_.width - 1) * d_model() * dtype_size(weight_.dtype());
  }
  const Mixer& inner() const { return *inner_; }
  // The local mixing on the buffers, then the wrapped mixer's own stepper.
  std::unique_ptr<MixerStepper> make_stepper(int64_t batch, WeightFormat format) override;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;

 private:
  Tensor taps() const;                        // [W, D]
  Tensor mix(const Tensor& x, State* state);  // x [B,T,D] -> x' [B,T,D], updating local.prev

  LocalContextConfig config_;
  std::shared_ptr<Mixer> inner_;
  Tensor weight_;  // conv: [W, D]; shift: mu [D]
};

}  // namespace rill
