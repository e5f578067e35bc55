// ActorCritic: a recurrent sequence model (any registered model: a ReLiT/AReLiT/GTrXL block
// stack, an LSTM or GRU, ...) as the shared trunk of a policy and a value function. The trunk
// reads observations [.., obs_dim] and writes head_hidden features per step; the actor maps
// ReLU(features) to action logits, the critic to a value (AGaLiTe's "actor/critic MLP 128").
// The same weights run in two forms: forward over a whole rollout [N, T] from a stored start
// state (training, with the tape: truncated BPTT) and step over one observation per lane (acting,
// no tape); both take the episode-start flags, and the trunk's state is fresh before an
// observation flagged first.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "rill/models/sequence_model.h"
#include "rill/nn/linear.h"

namespace rill::rl {

struct ActorCriticOutput {
  Tensor logits;  // [N, T, A] (step: [N, A])
  Tensor values;  // [N, T] (step: [N])
};

class ActorCritic : public nn::Module {
 public:
  // trunk_config: a model config (make_model); its input and output sizes are set here.
  ActorCritic(const nlohmann::json& trunk_config, int64_t obs_dim, int64_t actions,
              int64_t head_hidden, uint64_t seed);

  State init_state(int64_t lanes) const { return trunk->init_state(lanes); }
  // obs [N, T, F], first [N, T] (nonzero where an episode starts); state is read and left at
  // the end of the rollout.
  ActorCriticOutput forward(const Tensor& obs, State* state, const Tensor& first);
  // obs [N, F], first [N]; no tape.
  ActorCriticOutput step(const Tensor& obs, State& state, const Tensor& first);

  // What make_model and a checkpoint need to rebuild it.
  nlohmann::json config_json() const;

  std::shared_ptr<SequenceModel> trunk;
  std::shared_ptr<nn::Linear> actor, critic;
  int64_t obs_dim, actions, head_hidden;

 private:
  ActorCriticOutput heads(const Tensor& features) const;  // [..., H] -> logits, values
};

}  // namespace rill::rl
