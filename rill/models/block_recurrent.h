// The Block-Recurrent Transformer (Hutchins et al. 2022) and its sliding-window baselines as one
// model type, "block_recurrent": a stack of sliding-window layers (block_recurrent_layer.h), some
// of them recurrent, over token ids. Shapes: B batch, T time, D d_model, H heads, Dh head_dim,
// W window, S states, V vocabulary.
//
//   Rec    recurrent_layers [-2] (say), window W, segments of N = k W tokens: the paper's model
//   Slide  no recurrent layer, window W: sliding-window attention only
//   XL     no recurrent layer, window = the segment length N: each token sees the N before it,
//          half of them from the previous segment's cached keys and values (meliad's "XL:N";
//          Dai et al.'s recurrence over hidden states is the stack model's transformer_xl mixer)
//
// Blocks follow one clock shared by all streams of a state: a block ends after every W tokens
// since init_state, and every recurrent layer rewrites its state there (so a segment of N tokens
// gives N / W updates, and any cut of the stream into calls gives the same outputs). A reset
// (forward_with_resets, step_with_resets; a document start) gives the stream the learned initial
// state and hides every earlier token from it; it does not move the clock, so a reset at a block
// boundary (a document starting a segment, as meliad feeds them) makes the stream exactly a fresh
// one, and a reset inside a block shortens that stream's first block.
//
// State, constant in size (2W keys and values per layer, S x D per recurrent layer):
//   pos [B] i64                 tokens since init_state (equal in every stream: the clock)
//   start [B] i64               the position of each stream's first visible token
//   layers.i.keys, .values      [B, H, 2W, Dh]: the first min(pos, W + pos % W) rows hold the
//                               previous block's and the current block's keys and values
//   layers.i.cell [B, S, D]     recurrent layers: the state vectors
// The step form is the same computation on one token: its memory is the state above.
//
// Config (strict):
//   {"type": "block_recurrent", "d_model": 256, "n_layers": 4, "heads": 4, "head_dim": 0,
//    "mlp_hidden": 1024, "window": 64, "states": 64, "recurrent_layers": [-2],
//    "gate": "fixed", "cell": "skip", "num_buckets": 32, "max_distance": 128, "scale_init": 0,
//    "tie_embeddings": true, "dtype": "f32", "vocab": 256, "out_dim": 256}
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "rill/models/block_recurrent_layer.h"
#include "rill/models/token_step_model.h"
#include "rill/nn/embedding.h"

namespace rill {

struct BlockRecurrentConfig {
  ModelIO io{256, 0, 256};
  int64_t d_model = 256, n_layers = 4, heads = 4, head_dim = 0, mlp_hidden = 1024;
  int64_t window = 64, states = 64;
  std::vector<int64_t> recurrent_layers;  // layer indices, negative ones from the end
  GateKind gate = GateKind::fixed;
  CellKind cell = CellKind::skip;
  int64_t num_buckets = 32, max_distance = 128;
  double scale_init = 0;  // 0: sqrt(head_dim)
  bool tie_embeddings = true;
  DType dtype = DType::f32;

  static BlockRecurrentConfig from_json(const nlohmann::json& j, const ModelIO& io = {});
  nlohmann::json to_json() const;
  bool recurrent(int64_t layer) const;
  BlockRecurrentLayerConfig layer(int64_t i) const;
};

class BlockRecurrentModel : public TokenStepModel {
 public:
  BlockRecurrentModel(const BlockRecurrentConfig& config, uint64_t seed);

  State init_state(int64_t batch) const override;
  Tensor forward(const Tensor& ids, State* state) override;  // [B, T] -> [B, T, V]
  Tensor forward_with_resets(const Tensor& ids, State* state, const Tensor& resets) override;
  ModelInfo info(int64_t context) const override;
  const ModelIO& io() const override { return config.io; }
  nlohmann::json config_json() const override { return config.to_json(); }

  BlockRecurrentConfig config;
  std::shared_ptr<nn::Embedding> embed;
  std::vector<std::shared_ptr<BlockRecurrentLayer>> layers;
  std::shared_ptr<nn::RMSNorm> final_norm;
  std::shared_ptr<nn::Linear> out_proj;  // null when tied to the embedding

 private:
  // The layers over h [B, T, D] from the state's clock; advances the state.
  Tensor run(const Tensor& h, State& state) const;
  Tensor head(const Tensor& h) const;  // [B, T, D] -> [B, T, V]
  void check_state(const State& state, int64_t batch) const;
  Shape cache_shape(int64_t batch) const;  // a layer's keys or values: [B, H, 2W, Dh]
};

}  // namespace rill
