// The tight step path of a token model, for generation (mixers/mixer_stepper.h has the idea):
// one token for each of B streams, the weights packed once in a format (f32, bf16 or int8 per
// output channel) and read once per step for all B streams, buffers allocated once. Streams that
// step together share every weight read, so B of them cost far less than B single steps.
#pragma once
#include <memory>

#include "rill/backend/weights.h"
#include "rill/mixers/state.h"

namespace rill {

class SequenceModel;

// Replaces every matrix a stepper packs (2-D weights and embeddings) by its value in `format`
// (bf16 rounding, int8 per-channel quantisation; f32 leaves it), so that the ordinary forward
// computes with the weights the step path reads: evaluation of a format without stepping every
// token. Norm gains, biases and other vectors stay f32, as in the step path.
void round_weights_to(SequenceModel& model, WeightFormat format);

class ModelStepper {
 public:
  virtual ~ModelStepper() = default;
  // ids [B] (i64) -> logits [B, V]: a view of the stepper's buffer, valid until the next step.
  // state: the model's state for these B streams (init_state(B), or after a forward).
  virtual Tensor step(const Tensor& ids, State& state) = 0;
  virtual int64_t batch() const = 0;
  // Bytes of packed weights read per step (the bound on its speed is reading them).
  virtual size_t weight_bytes() const = 0;
};

// For a model without a tight path: its tensor step.
class TensorModelStepper : public ModelStepper {
 public:
  TensorModelStepper(SequenceModel& model, int64_t batch) : model_(model), batch_(batch) {}
  Tensor step(const Tensor& ids, State& state) override;
  int64_t batch() const override { return batch_; }
  size_t weight_bytes() const override;

 private:
  SequenceModel& model_;
  int64_t batch_;
};

}  // namespace rill
