// The language model: embedding, a stack of pre-norm blocks (a mixer chosen per layer by the
// JSON config, then an MLP, each on a residual branch), a final norm and the output head
// (optionally tied to the embedding). Shapes: B batch, T time, D d_model, V vocab.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rill/mixers/mixer.h"
#include "rill/nn/dropout.h"
#include "rill/nn/embedding.h"
#include "rill/nn/linear.h"
#include "rill/nn/mlp.h"
#include "rill/nn/norm.h"

namespace rill {

struct LMConfig {
  int64_t vocab = 256, d_model = 256, n_layers = 4, mlp_hidden = 1024;
  std::string mlp = "gelu";    // gelu | swiglu
  std::string norm = "layer";  // layer | rms
  bool tie_embeddings = true;
  double dropout = 0.0;
  uint64_t seed = 0;
  DType dtype = DType::f32;
  // One mixer per layer; a single entry is repeated for every layer.
  std::vector<nlohmann::json> mixers = {{{"type", "linear_attention"}, {"heads", 4}}};

  static LMConfig from_json(const nlohmann::json& j);  // strict: unknown keys are errors
  nlohmann::json to_json() const;
};

class Block : public nn::Module {
 public:
  Block(const LMConfig& c, const nlohmann::json& mixer, uint64_t seed);
  Tensor forward(const Tensor& x, State* state);
  Tensor step(const Tensor& x, State& state);  // x [B, D]

  std::shared_ptr<Mixer> mixer;
  std::shared_ptr<nn::Module> norm1, norm2;
  std::shared_ptr<nn::MLP> mlp;
  std::shared_ptr<nn::Dropout> drop;
};

// Applies a LayerNorm or RMSNorm held as a Module.
Tensor apply_norm(const std::shared_ptr<nn::Module>& norm, const Tensor& x);

class LanguageModel : public nn::Module {
 public:
  explicit LanguageModel(const LMConfig& config);

  State init_state(int64_t batch) const;  // layer i's state under "layers.i"
  // ids [B, T] (i64) -> logits [B, T, V]; carries `state` when given.
  Tensor forward(const Tensor& ids, State* state = nullptr);
  // Mean cross-entropy of next tokens (targets [B, T]).
  Tensor loss(const Tensor& ids, const Tensor& targets, State* state = nullptr);
  // One token per stream: ids [B] -> logits [B, V]; never records a tape.
  Tensor step(const Tensor& ids, State& state);

  // Every dropout generator by module name (checkpoints save their states).
  std::vector<std::pair<std::string, Generator*>> generators();
  double flops_per_token(int64_t context) const;  // forward multiply-adds x 2 at this context
  bool constant_state() const;                    // every layer's state is of fixed size

  LMConfig config;
  std::shared_ptr<nn::Embedding> embed;
  std::vector<std::shared_ptr<Block>> blocks;
  std::shared_ptr<nn::Module> final_norm;
  std::shared_ptr<nn::Linear> head;  // null when tied

 private:
  Tensor logits(const Tensor& h) const;
};

}  // namespace rill
