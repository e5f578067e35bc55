// SequenceModel: what the trainer, the tasks, generation and the CLI know of a model.
//   init_state(B)      a fresh recurrent state for B streams
//   forward(x, state)  x [B, T] (i64 tokens) or [B, T, F] (real features) -> outputs [B, T, O];
//                      reads the state when given and leaves the final state in it
//   step(x_t, state)   one token per stream: x_t [B] or [B, F] -> [B, O]; never records a tape
//   forward_with_resets(x, state, resets), step_with_resets(x_t, state, resets)
//                      the same with episode boundaries: resets [B, T] (step: [B]) nonzero where a
//                      stream starts afresh (its state before that token is a fresh one)
//   info()             parameters, FLOPs per token, state bytes
// A block stack (one mixer per block) is one implementation; models that are not built that way
// (CRT, a block-recurrent stack, Transformer-XL) implement the same interface. Models register
// themselves by type name (make_model builds one from its JSON config).
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rill/autograd/grad_mode.h"
#include "rill/core/rng.h"
#include "rill/mixers/state.h"
#include "rill/models/model_stepper.h"
#include "rill/nn/module.h"

namespace rill {

// What a task feeds a model and reads from it; the task fills it in before the model is built.
struct ModelIO {
  int64_t vocab = 0;        // > 0: inputs are token ids in [0, vocab)
  int64_t in_features = 0;  // > 0: inputs are real vectors of this size
  int64_t out_dim = 0;      // outputs per step (logits over the vocabulary, classes, values)
};

class JsonFields;
// Reads a model config's "vocab", "in_features" and "out_dim" into io; the task's sizes
// (override, where non-zero) replace them, as every model type does.
void read_model_io(JsonFields& f, ModelIO& io, const ModelIO& override);

struct ModelInfo {
  int64_t parameters = 0;
  double flops_per_token = 0;  // forward, at the context it was asked for
  size_t state_bytes = 0;      // per stream, at that context
  bool constant_state = true;  // the state does not grow with the context
};

class SequenceModel : public nn::Module {
 public:
  virtual State init_state(int64_t batch) const = 0;
  virtual Tensor forward(const Tensor& x, State* state) = 0;
  // The default refuses resets (a model says how its layers take them); undefined = none.
  virtual Tensor forward_with_resets(const Tensor& x, State* state, const Tensor& resets);
  // Puts a fresh state into the streams that reset (resets.h: the state's tensors must be per
  // stream), then steps. A model whose fresh stream is not simply init_state's says how.
  virtual Tensor step_with_resets(const Tensor& x_t, State& state, const Tensor& resets);
  Tensor step(const Tensor& x_t, State& state) {
    NoGradGuard no_grad;
    return step_impl(x_t, state);
  }
  // FLOPs and state bytes per stream after `context` tokens (a KV cache grows with it).
  virtual ModelInfo info(int64_t context) const = 0;
  virtual const ModelIO& io() const = 0;
  // The JSON that make_model rebuilds this model from (checkpoints store it).
  virtual nlohmann::json config_json() const = 0;
  // Every random generator the model draws from in training (dropout), by name, so that a
  // checkpoint can save and restore them.
  virtual std::vector<std::pair<std::string, Generator*>> generators() { return {}; }
  // The tight step path for B streams (model_stepper.h), with the weights as they are now; the
  // default runs the tensor step.
  virtual std::unique_ptr<ModelStepper> make_stepper(int64_t batch, WeightFormat format) {
    return std::make_unique<TensorModelStepper>(*this, batch);
  }

 protected:
  virtual Tensor step_impl(const Tensor& x_t, State& state) = 0;
};

// Builds a model from {"type": "...", ...}; "type" defaults to "stack". io overrides the
// config's input and output sizes (the task decides them); seed initialises the weights.
using ModelFactory = std::function<std::shared_ptr<SequenceModel>(
    const nlohmann::json& config, const ModelIO& io, uint64_t seed)>;
std::shared_ptr<SequenceModel> make_model(const nlohmann::json& config, const ModelIO& io,
                                          uint64_t seed);
std::vector<std::string> registered_models();

// Registers a model type at static-initialisation time: `static ModelRegistration r("stack", f);`
struct ModelRegistration {
  ModelRegistration(const std::string& type, ModelFactory factory);
};

}  // namespace rill
