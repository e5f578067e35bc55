// The model registry (type name -> factory, filled at static initialisation) and the default
// handling of resets.
#include "rill/models/sequence_model.h"

#include "rill/core/registry.h"
#include "rill/io/json_fields.h"
#include "rill/mixers/resets.h"

namespace rill {

namespace {

Registry<ModelFactory>& models() {
  static Registry<ModelFactory> r("model type");
  return r;
}

}  // namespace

ModelRegistration::ModelRegistration(const std::string& type, ModelFactory factory) {
  models().add(type, std::move(factory));
}

std::vector<std::string> registered_models() { return models().names(); }

void read_model_io(JsonFields& f, ModelIO& io, const ModelIO& override) {
  f.get("vocab", io.vocab);
  f.get("in_features", io.in_features);
  f.get("out_dim", io.out_dim);
  if (override.vocab > 0 || override.in_features > 0) {
    io.vocab = override.vocab;
    io.in_features = override.in_features;
  }
  if (override.out_dim > 0) io.out_dim = override.out_dim;
}

Tensor SequenceModel::forward_with_resets(const Tensor& x, State* state, const Tensor& resets) {
  RILL_CHECK(!resets.defined(), "[model] this model type does not take resets inside a sequence");
  return forward(x, state);
}

Tensor SequenceModel::step_with_resets(const Tensor& x_t, State& state, const Tensor& resets) {
  if (resets.defined()) {
    RILL_CHECK(
        x_t.defined() && x_t.dim() >= 1 && resets.dim() == 1 && resets.size(0) == x_t.size(0),
        "[model] step resets must be [B] = [{}], got {}", x_t.defined() ? x_t.size(0) : 0,
        shape_str(resets.shape()));
    const int64_t batch = x_t.size(0);
    Tensor lanes =
        reset_mask(resets.reshape({batch, 1}), batch, 1, DType::f32, "model step").view({batch});
    state = reset_streams(
        state, [&] { return init_state(batch); }, lanes, "model step");
  }
  return step(x_t, state);
}

std::shared_ptr<SequenceModel> make_model(const nlohmann::json& config, const ModelIO& io,
                                          uint64_t seed) {
  RILL_CHECK(config.is_object(), "[config] the model config must be a JSON object, got {}",
             config.dump());
  std::string type = "stack";
  if (config.contains("type")) {
    RILL_CHECK(config["type"].is_string(), "[config] the model's \"type\" must be a name, got {}",
               config["type"].dump());
    type = config["type"].get<std::string>();
  }
  return models().get(type)(config, io, seed);
}

Tensor TensorModelStepper::step(const Tensor& ids, State& state) {
  RILL_CHECK(ids.defined() && ids.dim() == 1 && ids.size(0) == batch_,
             "[stepper] expects ids [{}], got {}", batch_,
             ids.defined() ? shape_str(ids.shape()) : "undefined");
  return model_.step(ids, state);
}

size_t TensorModelStepper::weight_bytes() const {
  size_t b = 0;
  for (const Tensor& p : model_.parameters()) b += p.nbytes();
  return b;
}

void round_weights_to(SequenceModel& model, WeightFormat format) {
  if (format == WeightFormat::f32) return;
  NoGradGuard no_grad;
  for (const nn::NamedParameter& p : model.named_parameters())
    if (p.tensor.dim() == 2 && p.tensor.dtype() == DType::f32 &&
        (p.kind == nn::ParamKind::weight || p.kind == nn::ParamKind::embedding))
      Tensor(p.tensor).copy_(unpack_weights(pack_weights(p.tensor, format)));
}

}  // namespace rill
