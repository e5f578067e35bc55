// The block stack: the model type "stack", used for language models and sequence encoders.
//   input   an embedding of token ids (io.vocab) or a linear map of real features (io.in_features)
//   blocks  n_layers blocks (block.h), each with its own mixer and wiring from the config
//   output  a final norm and a linear head to io.out_dim per step (tied to the embedding when
//           the outputs are the vocabulary and tie_embeddings is set)
// Shapes: B batch, T time, D d_model, F in_features, O out_dim.
//
// Config (strict: unknown keys are errors):
//   {"type": "stack", "d_model": 256, "n_layers": 4, "mlp_hidden": 1024, "mlp": "gelu",
//    "norm": "layer", "tie_embeddings": true, "dropout": 0, "dtype": "f32",
//    "blocks": "pre_norm",                       (or one per layer)
//    "mixers": [{"type": "linear_attention", "heads": 4}],   (one, or one per layer)
//    "vocab": 256, "in_features": 0, "out_dim": 256}         (the task fills these in)
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rill/models/block.h"
#include "rill/models/sequence_model.h"
#include "rill/nn/embedding.h"
#include "rill/nn/linear.h"

namespace rill {

struct StackConfig {
  ModelIO io{256, 0, 256};
  int64_t d_model = 256, n_layers = 4, mlp_hidden = 1024;
  nn::MLPKind mlp = nn::MLPKind::gelu;
  nn::NormKind norm = nn::NormKind::layer;
  bool tie_embeddings = true;
  double dropout = 0.0;
  DType dtype = DType::f32;
  std::vector<BlockKind> blocks = {BlockKind::pre_norm};  // one, or one per layer
  std::vector<nlohmann::json> mixers = {{{"type", "linear_attention"}, {"heads", 4}}};

  // Strict; io overrides the config's sizes where its fields are non-zero. Refuses sizes a
  // typo could give (zero layers, a d_model of a million) before anything is allocated.
  static StackConfig from_json(const nlohmann::json& j, const ModelIO& io = {});
  nlohmann::json to_json() const;
  BlockConfig block(int64_t layer) const;
  const nlohmann::json& mixer(int64_t layer) const;
};

class StackModel : public SequenceModel {
 public:
  StackModel(const StackConfig& config, uint64_t seed);

  State init_state(int64_t batch) const override;  // layer i's state under "layers.i"
  // ids [B, T] (i64) or x [B, T, F] -> [B, T, O]
  Tensor forward(const Tensor& x, State* state) override;
  Tensor forward_with_resets(const Tensor& x, State* state, const Tensor& resets) override;
  // The last hidden states before the head, [B, T, D] (after the final norm).
  Tensor hidden(const Tensor& x, State* state, const Tensor& resets = Tensor());
  Tensor head(const Tensor& h) const;  // [..., D] -> [..., O]
  ModelInfo info(int64_t context) const override;
  const ModelIO& io() const override { return config.io; }
  nlohmann::json config_json() const override { return config.to_json(); }
  std::vector<std::pair<std::string, Generator*>> generators() override;
  // The tight step path (stack_stepper.cpp) for f32 token models; others take the tensor step.
  std::unique_ptr<ModelStepper> make_stepper(int64_t batch, WeightFormat format) override;

  StackConfig config;
  std::shared_ptr<nn::Embedding> embed;  // token input
  std::shared_ptr<nn::Linear> in_proj;   // feature input
  std::vector<std::shared_ptr<Block>> blocks;
  std::shared_ptr<nn::Norm> final_norm;
  std::shared_ptr<nn::Linear> out_proj;  // null when tied to the embedding

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;

 private:
  Tensor embed_input(const Tensor& x) const;
};

}  // namespace rill
