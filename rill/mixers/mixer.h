// The sequence-mixer contract every mechanism implements (DESIGN.md, "Core abstractions"):
//   init_state(B)        a fresh state for B streams
//   forward(x, state)    x [B, T, D] for any T; reads the state when given and leaves the
//                        final state in it (parallel or chunkwise form; records a tape)
//   step(x_t, state)     x_t [B, D], one token, never records a tape
//   forward_with_resets(x, state, resets)
//                        the forward with episode boundaries inside the sequence: resets [B, T]
//                        nonzero at (b, t) means stream b starts afresh at token t (its state
//                        before token t is a fresh one), as if the sequence were cut there
#pragma once
#include <string>

#include "rill/autograd/grad_mode.h"
#include "rill/mixers/mixer_stepper.h"
#include "rill/mixers/state.h"
#include "rill/nn/module.h"

namespace rill {

class Mixer : public nn::Module {
 public:
  explicit Mixer(int64_t d_model) : d_model_(d_model) {}

  virtual State init_state(int64_t batch) const = 0;
  virtual Tensor forward(const Tensor& x, State* state) = 0;
  Tensor step(const Tensor& x_t, State& state) {
    NoGradGuard no_grad;
    check_step_input(x_t);
    return step_impl(x_t, state);
  }
  // resets [B, T], any dtype, nonzero where a stream starts a new episode (documents in a
  // stream, episodes in RL). Undefined = none. A mixer with native support (native_resets)
  // zeroes its state inside its kernels; any other runs its forward piece by piece, cut where
  // some stream resets, putting fresh state into the streams that reset (resets.h).
  Tensor forward_with_resets(const Tensor& x, State* state, const Tensor& resets);
  virtual std::string kind() const = 0;
  // True when the state's size does not grow with the context (the recurrent mixers).
  virtual bool constant_state() const = 0;
  // FLOPs of the token mixing itself (projections excluded) for one token at this context.
  virtual double mixing_flops_per_token(int64_t context) const = 0;
  // Bytes of one stream's state after `context` tokens. The default measures a fresh state,
  // right for a constant one; a mixer whose state grows or fills up says how.
  virtual size_t state_bytes(int64_t context) const { return init_state(1).bytes(); }
  int64_t d_model() const { return d_model_; }
  // The tight step path for B streams with weights packed in `format` (mixer_stepper.h). The
  // stepper reads this mixer's weights as they are when it is made; the default runs the tensor
  // step. Valid while the mixer lives.
  virtual std::unique_ptr<MixerStepper> make_stepper(int64_t batch, WeightFormat format) {
    return std::make_unique<TensorStepFallback>(*this);
  }

 protected:
  virtual Tensor step_impl(const Tensor& x_t, State& state) = 0;
  // A mixer that handles resets inside its own forward overrides both; resets is then a
  // validated [B, T] mask in x's dtype with at least one nonzero.
  virtual bool native_resets() const { return false; }
  virtual Tensor forward_native_resets(const Tensor& x, State* state, const Tensor& resets);
  void check_forward_input(const Tensor& x) const;  // [B, T, d_model], floating
  void check_step_input(const Tensor& x_t) const;   // [B, d_model], floating

 private:
  int64_t d_model_;
};

}  // namespace rill
