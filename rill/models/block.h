// A layer of a block stack: a sequence mixer and an MLP, each on a residual branch, wired in one
// of three ways chosen per layer in the model config ("blocks"):
//   pre_norm   h = x + mixer(norm1(x));           out = h + mlp(norm2(h))        (GPT-2 and on)
//   post_norm  h = norm1(x + mixer(x));           out = norm2(h + mlp(h))        (Vaswani 2017)
//   gru_gated  h = gate1(x, relu(mixer(norm1(x)))); out = gate2(h, relu(mlp(norm2(h))))
//              (GTrXL, Parisotto et al. 2020; the ReLiT authors' layer; nn/gru_gate.h)
// Shapes: B batch, T time, D d_model.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "rill/mixers/mixer.h"
#include "rill/nn/dropout.h"
#include "rill/nn/gru_gate.h"
#include "rill/nn/mlp.h"
#include "rill/nn/norm.h"

namespace rill {

enum class BlockKind { pre_norm, post_norm, gru_gated };
BlockKind parse_block_kind(const std::string& name);  // "pre_norm", "post_norm", "gru_gated"
const char* block_kind_name(BlockKind kind);

struct BlockConfig {
  BlockKind kind = BlockKind::pre_norm;
  int64_t d_model = 256, mlp_hidden = 1024;
  nn::MLPKind mlp = nn::MLPKind::gelu;
  nn::NormKind norm = nn::NormKind::layer;
  double dropout = 0;
  DType dtype = DType::f32;
};

class Block : public nn::Module {
 public:
  Block(const BlockConfig& config, const nlohmann::json& mixer, uint64_t seed);
  // x [B, T, D]; resets [B, T] (undefined = none) go to the mixer (Mixer::forward_with_resets).
  Tensor forward(const Tensor& x, State* state, const Tensor& resets = Tensor());
  Tensor step(const Tensor& x, State& state);  // x [B, D], no tape

  BlockKind kind;
  std::shared_ptr<Mixer> mixer;
  std::shared_ptr<nn::Norm> norm1, norm2;
  std::shared_ptr<nn::MLP> mlp;
  std::shared_ptr<nn::GruGate> gate1, gate2;  // gru_gated only
  std::shared_ptr<nn::Dropout> drop;          // when dropout > 0

 private:
  // The wiring, shared by both forms: mix(normed input) runs the mixer's forward or its step.
  template <class Mix>
  Tensor wire(const Tensor& x, Mix&& mix);
};

}  // namespace rill
