// Strict reading of an actor-critic run's config (see rl_config.h).
#include "rill/rl/rl_config.h"

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/io/json_file.h"

namespace rill::rl {

using nlohmann::json;

RlConfig RlConfig::from_json(const json& j) {
  JsonFields f(j, "the rl config");
  RlConfig c;
  const json* env = f.raw("env");
  const json* model = f.raw("model");
  RILL_CHECK(env && env->is_object(),
             "[config] the rl config needs an \"env\" object, e.g. "
             "{{\"type\": \"tmazev2\", \"corridor\": 50}}");
  RILL_CHECK(model && model->is_object(),
             "[config] the rl config needs a \"model\" object (a model config, as in training)");
  c.env = *env;
  c.model = *model;
  f.get("head_hidden", c.head_hidden);
  f.get("algo", c.algo);
  f.get("envs", c.envs);
  f.get("rollout", c.rollout);
  f.get("env_steps", c.env_steps);
  f.get("time_limit_s", c.time_limit_s);
  f.get("gamma", c.gamma);
  f.get("lambda", c.lambda);
  f.get("lr", c.lr);
  f.get("ent_coef", c.ent_coef);
  f.get("vf_coef", c.vf_coef);
  f.get("clip_grad", c.clip_grad);
  f.get("ppo_clip", c.ppo_clip);
  f.get("epochs", c.epochs);
  f.get("minibatches", c.minibatches);
  f.get("normalize_advantages", c.normalize_advantages);
  f.get("eval_episodes", c.eval_episodes);
  f.get("eval_greedy", c.eval_greedy);
  f.get("window", c.window);
  f.get("solve_fraction", c.solve_fraction);
  f.get("memoryless", c.memoryless);
  f.get("checkpoint_every", c.checkpoint_every);
  f.get("seed", c.seed);
  f.get("out_dir", c.out_dir);
  f.finish();
  c.validate();
  return c;
}

RlConfig RlConfig::from_file(const std::string& path) {
  return parse_json_file(path, "the rl config", from_json);
}

void RlConfig::validate() const {
  json j = to_json();
  JsonFields f(j, "the rl config");
  f.check("algo", algo, algo == "a2c" || algo == "ppo", "\"a2c\" or \"ppo\"");
  f.check("head_hidden", head_hidden, head_hidden >= 1 && head_hidden <= 65536, "1 .. 65536");
  f.check("envs", envs, envs >= 1 && envs <= 4096, "1 .. 4096");
  f.check("rollout", rollout, rollout >= 1 && rollout <= 100000, "1 .. 100000");
  f.check("env_steps", env_steps, env_steps >= envs * rollout,
          "at least one rollout (envs x rollout)");
  f.check("time_limit_s", time_limit_s, time_limit_s >= 0, "0 (none) or positive");
  f.check("gamma", gamma, gamma >= 0 && gamma <= 1, "in [0, 1]");
  f.check("lambda", lambda, lambda >= 0 && lambda <= 1, "in [0, 1]");
  f.check("lr", lr, lr > 0 && lr < 1, "in (0, 1)");
  f.check("ent_coef", ent_coef, ent_coef >= 0, "0 or positive");
  f.check("vf_coef", vf_coef, vf_coef >= 0, "0 or positive");
  f.check("clip_grad", clip_grad, clip_grad >= 0, "0 (none) or positive");
  f.check("ppo_clip", ppo_clip, ppo_clip > 0 && ppo_clip < 1, "in (0, 1)");
  f.check("epochs", epochs, epochs >= 1 && epochs <= 1000, "1 .. 1000");
  f.check("minibatches", minibatches, minibatches >= 1 && minibatches <= envs,
          "1 .. envs (a minibatch is a group of whole lanes)");
  f.check("minibatches", minibatches, envs % minibatches == 0, "a divisor of envs");
  f.check("eval_episodes", eval_episodes, eval_episodes >= 0 && eval_episodes <= 1000000,
          "0 .. 10^6");
  f.check("window", window, window >= 1 && window <= 1000000, "1 .. 10^6");
  f.check("solve_fraction", solve_fraction, solve_fraction > 0 && solve_fraction <= 1, "in (0, 1]");
  f.check("checkpoint_every", checkpoint_every, checkpoint_every >= 1, "at least 1 update");
  RILL_CHECK(!out_dir.empty(), "[config] the rl config: \"out_dir\" is empty");
}

json RlConfig::to_json() const {
  return {{"env", env},
          {"model", model},
          {"head_hidden", head_hidden},
          {"algo", algo},
          {"envs", envs},
          {"rollout", rollout},
          {"env_steps", env_steps},
          {"time_limit_s", time_limit_s},
          {"gamma", gamma},
          {"lambda", lambda},
          {"lr", lr},
          {"ent_coef", ent_coef},
          {"vf_coef", vf_coef},
          {"clip_grad", clip_grad},
          {"ppo_clip", ppo_clip},
          {"epochs", epochs},
          {"minibatches", minibatches},
          {"normalize_advantages", normalize_advantages},
          {"eval_episodes", eval_episodes},
          {"eval_greedy", eval_greedy},
          {"window", window},
          {"solve_fraction", solve_fraction},
          {"memoryless", memoryless},
          {"checkpoint_every", checkpoint_every},
          {"seed", seed},
          {"out_dir", out_dir}};
}

}  // namespace rill::rl
