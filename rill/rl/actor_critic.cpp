// The actor-critic model over a recurrent trunk (see actor_critic.h).
#include "rill/rl/actor_critic.h"

#include "rill/autograd/grad_mode.h"
#include "rill/core/error.h"
#include "rill/ops/elementwise.h"

namespace rill::rl {

using nlohmann::json;

ActorCritic::ActorCritic(const json& trunk_config, int64_t obs_dim_in, int64_t actions_in,
                         int64_t head_hidden_in, uint64_t seed)
    : obs_dim(obs_dim_in), actions(actions_in), head_hidden(head_hidden_in) {
  RILL_CHECK(obs_dim > 0 && actions > 1 && head_hidden > 0 && head_hidden <= 65536,
             "[rl] an actor-critic needs observations ({}), at least two actions ({}) and a "
             "head width in 1 .. 65536 ({})",
             obs_dim, actions, head_hidden);
  trunk =
      register_module("trunk", make_model(trunk_config, ModelIO{0, obs_dim, head_hidden}, seed));
  // Orthogonal heads as in PPO practice: a near-uniform first policy (gain 0.01) and a critic of
  // unit scale.
  nn::LinearOptions actor_opt{true, nn::LinearInit::orthogonal, 0.02, 0.01};
  nn::LinearOptions critic_opt{true, nn::LinearInit::orthogonal, 0.02, 1.0};
  actor = register_module(
      "actor", std::make_shared<nn::Linear>(head_hidden, actions, seed + 101, actor_opt));
  critic = register_module("critic",
                           std::make_shared<nn::Linear>(head_hidden, 1, seed + 102, critic_opt));
}

ActorCriticOutput ActorCritic::heads(const Tensor& features) const {
  const Tensor h = relu(features);
  return {actor->forward(h), critic->forward(h).squeeze(-1)};
}

ActorCriticOutput ActorCritic::forward(const Tensor& obs, State* state, const Tensor& first) {
  return heads(trunk->forward_with_resets(obs, state, first));
}

ActorCriticOutput ActorCritic::step(const Tensor& obs, State& state, const Tensor& first) {
  NoGradGuard no_grad;
  return heads(trunk->step_with_resets(obs, state, first));
}

json ActorCritic::config_json() const {
  return {{"trunk", trunk->config_json()},
          {"obs_dim", obs_dim},
          {"actions", actions},
          {"head_hidden", head_hidden}};
}

}  // namespace rill::rl
