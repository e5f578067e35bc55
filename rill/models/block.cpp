// The three block wirings around one mixer and one MLP.
#include "rill/models/block.h"

#include "rill/mixers/registry.h"
#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"

namespace rill {

BlockKind parse_block_kind(const std::string& name) {
  if (name == "pre_norm") return BlockKind::pre_norm;
  if (name == "post_norm") return BlockKind::post_norm;
  if (name == "gru_gated") return BlockKind::gru_gated;
  fail("[config] block \"{}\" is not pre_norm, post_norm or gru_gated", name);
}

const char* block_kind_name(BlockKind kind) {
  switch (kind) {
    case BlockKind::pre_norm:
      return "pre_norm";
    case BlockKind::post_norm:
      return "post_norm";
    case BlockKind::gru_gated:
      return "gru_gated";
  }
  return "?";
}

Block::Block(const BlockConfig& c, const nlohmann::json& mixer_config, uint64_t seed)
    : kind(c.kind) {
  norm1 = register_module("norm1", nn::make_norm(c.norm, c.d_model, c.dtype));
  mixer = register_module("mixer",
                          make_mixer(mixer_config, c.d_model, nn::derive_seed(seed, 0), c.dtype));
  norm2 = register_module("norm2", nn::make_norm(c.norm, c.d_model, c.dtype));
  mlp = register_module("mlp", std::make_shared<nn::MLP>(c.d_model, c.mlp_hidden, c.mlp,
                                                         nn::derive_seed(seed, 1), true, c.dtype));
  if (c.kind == BlockKind::gru_gated) {
    gate1 = register_module(
        "gate1", std::make_shared<nn::GruGate>(c.d_model, nn::derive_seed(seed, 3), c.dtype));
    gate2 = register_module(
        "gate2", std::make_shared<nn::GruGate>(c.d_model, nn::derive_seed(seed, 4), c.dtype));
  }
  if (c.dropout > 0)
    drop =
        register_module("drop", std::make_shared<nn::Dropout>(c.dropout, nn::derive_seed(seed, 2)));
}

template <class Mix>
Tensor Block::wire(const Tensor& x, Mix&& mix) {
  auto dropped = [&](const Tensor& t) { return drop ? drop->forward(t) : t; };
  switch (kind) {
    case BlockKind::pre_norm: {
      Tensor h = add(x, dropped(mix(norm1->forward(x))));
      return add(h, dropped(mlp->forward(norm2->forward(h))));
    }
    case BlockKind::post_norm: {
      Tensor h = norm1->forward(add(x, dropped(mix(x))));
      return norm2->forward(add(h, dropped(mlp->forward(h))));
    }
    case BlockKind::gru_gated: {
      Tensor h = gate1->forward(x, relu(dropped(mix(norm1->forward(x)))));
      return gate2->forward(h, relu(dropped(mlp->forward(norm2->forward(h)))));
    }
  }
  return x;
}

Tensor Block::forward(const Tensor& x, State* state, const Tensor& resets) {
  return wire(x, [&](const Tensor& n) { return mixer->forward_with_resets(n, state, resets); });
}

Tensor Block::step(const Tensor& x, State& state) {
  NoGradGuard no_grad;
  return wire(x, [&](const Tensor& n) { return mixer->step(n, state); });
}

}  // namespace rill
