// The tight step path of a mixer, for generation: one token for B streams on buffers allocated
// once, with the matrix products on packed weights (backend/weights.h: f32, bf16 or int8 per
// output channel, f32 accumulation) read once per step for all B streams; no tape, no temporary
// tensors for the large products. The recurrent state stays the mixer's own State (f32), so a
// stream can move between the tensor step and a stepper at any token.
//
// A mixer without a tight path gets TensorStepFallback: its ordinary tensor step, copied out.
#pragma once
#include <memory>

#include "rill/backend/weights.h"
#include "rill/mixers/state.h"

namespace rill {

class Mixer;

class MixerStepper {
 public:
  virtual ~MixerStepper() = default;
  // x, y: f32 [B, D] contiguous, distinct; state: the mixer's state for these B streams.
  virtual void step(const Tensor& x, const Tensor& y, State& state) = 0;
  // Bytes of packed weights this stepper reads per step.
  virtual size_t weight_bytes() const { return 0; }
};

class TensorStepFallback : public MixerStepper {
 public:
  explicit TensorStepFallback(Mixer& mixer) : mixer_(mixer) {}
  void step(const Tensor& x, const Tensor& y, State& state) override;

 private:
  Mixer& mixer_;
};

}  // namespace rill
