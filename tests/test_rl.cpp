// Reinforcement learning with memory: the AGaLiTe T-Maze against its specification, vectorised
// environments against single ones, lambda-returns and GAE against hand-computed values, the A2C
// and PPO losses and their gradients against a reference computed here in plain doubles, the
// actor-critic's two forms against each other, and training: a memoryless agent fails the T-Maze
// where the same recurrent agent solves a short corridor, a resumed run equals an uninterrupted
// one bitwise, and bad configs are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rill/autograd/grad_mode.h"
#include "rill/rl/actor_critic.h"
#include "rill/rl/env.h"
#include "rill/rl/policy_loss.h"
#include "rill/rl/returns.h"
#include "rill/rl/rl_config.h"
#include "rill/rl/rl_sweep.h"
#include "rill/rl/rl_trainer.h"
#include "rill/rl/vec_env.h"
#include "rill/train/checkpoint.h"
#include "tests/support/files.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::rl;
using namespace rill::testing;
using nlohmann::json;

namespace {

const json kMaze = {{"type", "tmazev2"}, {"corridor", 6}};

// Plays one episode with `policy(obs, t)`; returns (return, success, length).
struct Played {
  double ret = 0;
  bool success = false;
  int64_t length = 0;
  bool truncated = false;
};
template <class Policy>
Played play(Env& env, uint64_t seed, uint64_t episode, Policy policy) {
  std::vector<float> obs(env.spec().obs_dim);
  env.reset(seed, episode, obs.data());
  Played p;
  for (;;) {
    const StepResult r = env.step(policy(obs, p.length), obs.data());
    p.ret += r.reward;
    ++p.length;
    if (r.done()) {
      p.success = r.success;
      p.truncated = r.truncated;
      return p;
    }
  }
}

// A small recurrent agent trunk: one gated block over `mixer`.
json small_model(const json& mixer, int64_t d = 32) {
  return {{"d_model", d},
          {"n_layers", 1},
          {"mlp_hidden", d},
          {"blocks", "gru_gated"},
          {"mixers", {mixer}}};
}

RlConfig small_run(const std::string& out_dir, const json& env, const json& mixer) {
  RlConfig c;
  c.env = env;
  c.model = small_model(mixer);
  c.head_hidden = 32;
  c.envs = 8;
  c.rollout = 16;
  c.env_steps = 8 * 16 * 4;
  c.lr = 3e-3;
  c.ent_coef = 0.01;
  c.eval_episodes = 0;
  c.window = 20;
  c.out_dir = out_dir;
  return c;
}

}  // namespace

TEST(TMazeV2, SpecificationAndObservationLayout) {
  auto env = make_env({{"type", "tmazev2"}, {"corridor", 5}});
  const EnvSpec& s = env->spec();
  EXPECT_EQ(s.obs_dim, 16);
  EXPECT_EQ(s.actions, 4);
  EXPECT_EQ(s.max_steps, 1000);
  EXPECT_TRUE(s.has_success);
  EXPECT_NEAR(s.optimal_return, 4 - 0.1 * 4, 1e-12);
  EXPECT_NEAR(s.memoryless_return, 1.5 - 0.1 * 4, 1e-12);
  std::vector<float> obs(16);
  int cues[2] = {0, 0};
  for (uint64_t e = 0; e < 40; ++e) {
    env->reset(3, e, obs.data());
    // t = 0: the cue (one-hot, up [0, 1] or down [1, 0]), position 0, no distractors.
    EXPECT_EQ(obs[0] + obs[1], 1.f);
    ++cues[obs[1] == 1.f ? 0 : 1];
    for (int j = 2; j < 16; ++j) EXPECT_EQ(obs[j], 0.f) << j;
    EXPECT_EQ(env->oracle_action(), 3);  // at the start the oracle walks right
    // Walk to position 3: the cue is gone, the position is Gray code 3 -> 0b10 in bits 2..9.
    for (int i = 0; i < 3; ++i) {
      const StepResult r = env->step(3, obs.data());
      EXPECT_DOUBLE_EQ(r.reward, -0.1);
      EXPECT_FALSE(r.done());
    }
    EXPECT_EQ(obs[0], 0.f);
    EXPECT_EQ(obs[1], 0.f);
    const float gray3[8] = {0, 0, 0, 0, 0, 0, 1, 0};
    for (int j = 0; j < 8; ++j) EXPECT_EQ(obs[2 + j], gray3[j]) << j;
    // Left moves back, up and down in the corridor do nothing but cost a step.
    env->step(2, obs.data());
    EXPECT_EQ(obs[8], 1.f);  // Gray code of 2 is 0b11
    EXPECT_EQ(obs[9], 1.f);
    env->step(0, obs.data());
    EXPECT_EQ(obs[8], 1.f);
  }
  EXPECT_GT(cues[0], 10);  // both cues occur
  EXPECT_GT(cues[1], 10);
  // The distractor bits vary after t = 0.
  double ones = 0;
  env->reset(1, 0, obs.data());
  for (int i = 0; i < 200; ++i) {
    env->step(2, obs.data());
    for (int j = 10; j < 16; ++j) ones += obs[j];
  }
  EXPECT_GT(ones / 1200, 0.35);
  EXPECT_LT(ones / 1200, 0.65);
}

TEST(TMazeV2, OracleIsOptimalAndAMemorylessPolicyGuesses) {
  auto env = make_env({{"type", "tmazev2"}, {"corridor", 8}});
  for (uint64_t e = 0; e < 50; ++e) {
    const Played p = play(*env, 7, e, [&](auto&, int64_t) { return env->oracle_action(); });
    EXPECT_NEAR(p.ret, env->spec().optimal_return, 1e-9);
    EXPECT_TRUE(p.success);
    EXPECT_EQ(p.length, 8);
  }
  // The best memoryless policy: walk right, always answer up. Half the cues are up.
  double total = 0, wins = 0;
  const int episodes = 2000;
  for (int e = 0; e < episodes; ++e) {
    const Played p = play(*env, 9, e, [&](const std::vector<float>& o, int64_t) {
      // Position 7 (the junction) is Gray code 0b100: bit 2 of eight, obs[2 + 5].
      const bool junction = o[2 + 7] == 0 && o[2 + 6] == 0 && o[2 + 5] == 1 && o[2 + 4] == 0;
      return junction ? 0 : 3;
    });
    total += p.ret, wins += p.success;
  }
  // Mean return = walk + 1.5, within 4 standard errors (sd of the ending: 2.5).
  EXPECT_NEAR(total / episodes, env->spec().memoryless_return, 4 * 2.5 / std::sqrt(episodes));
  EXPECT_NEAR(wins / episodes, 0.5, 4 * 0.5 / std::sqrt(episodes));
  // The wrong arm ends the episode with -1; a policy that never reaches it is truncated.
  const Played wrong = play(*env, 7, 0, [&](auto&, int64_t) {
    const int64_t a = env->oracle_action();
    return a == 3 ? 3 : 1 - a;
  });
  EXPECT_FALSE(wrong.success);
  EXPECT_NEAR(wrong.ret, -0.1 * 7 - 1, 1e-9);
  const Played stuck = play(*env, 7, 0, [](auto&, int64_t) { return 2; });
  EXPECT_TRUE(stuck.truncated);
  EXPECT_EQ(stuck.length, 1000);
  EXPECT_NEAR(stuck.ret, -100, 1e-9);
}

TEST(TMazeV2, SaveLoadContinuesExactlyAndBadInputIsRefused) {
  auto a = make_env(kMaze), b = make_env(kMaze);
  std::vector<float> oa(16), ob(16);
  a->reset(4, 2, oa.data());
  for (int i = 0; i < 3; ++i) a->step(i == 1 ? 2 : 3, oa.data());
  b->load(a->save());
  for (int i = 0; i < 20; ++i) {
    const int64_t act = i % 3 == 0 ? 2 : 3;
    const StepResult ra = a->step(act, oa.data()), rb = b->step(act, ob.data());
    EXPECT_EQ(ra.reward, rb.reward);
    EXPECT_EQ(oa, ob) << i;
    if (ra.done()) break;
  }
  // The same (seed, episode) gives the same episode.
  a->reset(11, 5, oa.data());
  b->reset(11, 5, ob.data());
  EXPECT_EQ(oa, ob);
  expect_error([&] { a->step(4, oa.data()); }, {"action 4", "0 .. 3"});
  expect_error([&] { make_env({{"type", "tmazev2"}, {"corridor", 1}}); }, {"corridor"});
  expect_error(
      [&] {
        make_env({{"type", "tmazev2"}, {"corridor", 50}, {"max_steps", 10}});
      },
      {"max_steps"});
  expect_error([&] { make_env({{"type", "tmazev2"}, {"coridor", 5}}); }, {"coridor"});
  expect_error([&] { make_env({{"type", "tmaze_v3"}}); }, {"unknown environment", "tmazev2"});
  json bad = a->save();
  bad["pos"] = 99;
  expect_error([&] { b->load(bad); }, {"pos"});
  bad = a->save();
  bad.erase("cue");
  expect_error([&] { b->load(bad); }, {"cue"});
}

TEST(VecEnv, CopiesEqualSingleEnvironmentsAndResumeExactly) {
  const int64_t n = 3;
  VecEnv venv(kMaze, n, 21);
  std::vector<std::unique_ptr<Env>> singles;
  std::vector<uint64_t> episode(n, 0);
  std::vector<std::vector<float>> obs(n, std::vector<float>(16));
  for (int64_t i = 0; i < n; ++i) {
    singles.push_back(make_env(kMaze));
    singles[i]->reset(copy_seed(21, i), 0, obs[i].data());
  }
  std::vector<float> rewards;
  std::vector<uint8_t> dones;
  int64_t ended = 0;
  std::unique_ptr<VecEnv> resumed;
  for (int step = 0; step < 60; ++step) {
    if (step == 25) {  // a copy made mid-run continues identically
      resumed = std::make_unique<VecEnv>(kMaze, n, 21);
      resumed->load(venv.save());
    }
    std::vector<int64_t> actions(n);
    for (int64_t i = 0; i < n; ++i) actions[i] = (step + i) % 5 == 0 ? 2 : (step % 7 == 6 ? 0 : 3);
    std::vector<float> rr;
    std::vector<uint8_t> rd;
    if (resumed) resumed->step(actions, rr, rd);
    venv.step(actions, rewards, dones);
    for (int64_t i = 0; i < n; ++i) {
      const StepResult r = singles[i]->step(actions[i], obs[i].data());
      EXPECT_FLOAT_EQ(rewards[i], float(r.reward));
      EXPECT_EQ(dones[i], r.done() ? 1 : 0);
      EXPECT_EQ(venv.first()[i], r.done() ? 1 : 0);
      if (r.done()) {
        singles[i]->reset(copy_seed(21, i), ++episode[i], obs[i].data());
        ++ended;
      }
      const std::vector<float> got(venv.obs().begin() + i * 16, venv.obs().begin() + i * 16 + 16);
      EXPECT_EQ(got, obs[i]) << "copy " << i << " step " << step;
      if (resumed) {
        EXPECT_EQ(rr, rewards);
        EXPECT_EQ(rd, dones);
      }
    }
  }
  EXPECT_GT(ended, 3);
  EXPECT_EQ(venv.episodes_done(), ended);
  EXPECT_EQ(int64_t(venv.take_finished().size()), ended);
  VecEnv other(kMaze, n + 1, 21);
  expect_error([&] { other.load(venv.save()); }, {"copies"});
}

TEST(Returns, LambdaReturnsAndGaeMatchHandComputedValues) {
  // One lane, three steps; the episode ends with step 1.
  const std::vector<float> r = {1, 2, 3}, v = {0.5f, 0.25f, 1.0f}, boot = {2};
  const std::vector<uint8_t> d = {0, 1, 0};
  const double g = 0.9, l = 0.5;
  const auto G = lambda_returns(1, 3, r, d, v, boot, g, l);
  // G2 = 3 + 0.9 * 2; G1 = 2 (the episode ended); G0 = 1 + 0.9 (0.5 V1 + 0.5 G1).
  EXPECT_NEAR(G[2], 4.8, 1e-12);
  EXPECT_NEAR(G[1], 2.0, 1e-12);
  EXPECT_NEAR(G[0], 1 + 0.9 * (0.5 * 0.25 + 0.5 * 2.0), 1e-12);
  const auto A = gae(1, 3, r, d, v, boot, g, l);
  EXPECT_NEAR(A[2], 3 + 0.9 * 2 - 1.0, 1e-12);
  EXPECT_NEAR(A[1], 2 - 0.25, 1e-12);
  EXPECT_NEAR(A[0], (1 + 0.9 * 0.25 - 0.5) + 0.9 * 0.5 * 1.75, 1e-12);
  // G = A + V on random rollouts of several lanes; lambda 1 is the discounted Monte Carlo return
  // and lambda 0 the one-step target.
  const int64_t n = 3, t = 7;
  std::vector<float> rr(n * t), vv(n * t), bb(n);
  std::vector<uint8_t> dd(n * t);
  for (int64_t k = 0; k < n * t; ++k) {
    rr[k] = float(std::sin(k * 1.3)), vv[k] = float(std::cos(k * 0.7));
    dd[k] = k % 5 == 3;
  }
  for (int64_t i = 0; i < n; ++i) bb[i] = float(0.3 * i - 0.2);
  for (double lam : {0.0, 0.6, 1.0}) {
    const auto gl = lambda_returns(n, t, rr, dd, vv, bb, 0.97, lam);
    const auto al = gae(n, t, rr, dd, vv, bb, 0.97, lam);
    for (int64_t k = 0; k < n * t; ++k) EXPECT_NEAR(gl[k], al[k] + vv[k], 1e-9) << k;
  }
  const auto mc = lambda_returns(n, t, rr, dd, vv, bb, 0.97, 1.0);
  const auto td = lambda_returns(n, t, rr, dd, vv, bb, 0.97, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double ret = bb[i];
    for (int64_t s = t - 1; s >= 0; --s) {
      const int64_t k = i * t + s;
      const double next_v = s + 1 < t ? vv[k + 1] : bb[i];
      ret = rr[k] + (dd[k] ? 0.0 : 0.97 * ret);
      EXPECT_NEAR(mc[k], ret, 1e-9);
      EXPECT_NEAR(td[k], rr[k] + (dd[k] ? 0.0 : 0.97 * next_v), 1e-9);
    }
  }
}

namespace {

// The losses in plain doubles, straight from their definitions.
struct LossInputs {
  int64_t m = 6, a = 3;
  std::vector<double> logits, values, old_logp, adv, ret;
  std::vector<int64_t> actions;
};

double reference_loss(const LossInputs& in, const std::vector<double>& logits,
                      const std::vector<double>& values, bool ppo, const LossCoefficients& c) {
  double pg = 0, vl = 0, ent = 0;
  for (int64_t i = 0; i < in.m; ++i) {
    double mx = -1e300, z = 0;
    for (int64_t j = 0; j < in.a; ++j) mx = std::max(mx, logits[i * in.a + j]);
    for (int64_t j = 0; j < in.a; ++j) z += std::exp(logits[i * in.a + j] - mx);
    const double logz = mx + std::log(z);
    for (int64_t j = 0; j < in.a; ++j) {
      const double lp = logits[i * in.a + j] - logz;
      ent -= std::exp(lp) * lp;
    }
    const double logp = logits[i * in.a + in.actions[i]] - logz;
    if (ppo) {
      const double ratio = std::exp(logp - in.old_logp[i]);
      const double clipped = std::min(std::max(ratio, 1 - c.clip), 1 + c.clip);
      pg -= std::min(ratio * in.adv[i], clipped * in.adv[i]);
    } else {
      pg -= logp * in.adv[i];
    }
    vl += 0.5 * (values[i] - in.ret[i]) * (values[i] - in.ret[i]);
  }
  return (pg + c.vf_coef * vl - c.ent_coef * ent) / double(in.m);
}

LossInputs loss_inputs() {
  LossInputs in;
  for (int64_t k = 0; k < in.m * in.a; ++k) in.logits.push_back(std::sin(1.7 * k) * 1.5);
  for (int64_t i = 0; i < in.m; ++i) {
    in.values.push_back(std::cos(0.9 * i));
    in.actions.push_back((i * 2) % in.a);
    in.adv.push_back(i % 2 ? 1.2 - 0.3 * i : 0.8 + 0.1 * i);
    in.ret.push_back(0.5 * i - 1);
  }
  // Old log-probabilities away from the current ones, so that some ratios leave [0.8, 1.2] on
  // either side (clipped) and others stay inside.
  for (int64_t i = 0; i < in.m; ++i) {
    double mx = -1e300, z = 0;
    for (int64_t j = 0; j < in.a; ++j) mx = std::max(mx, in.logits[i * in.a + j]);
    for (int64_t j = 0; j < in.a; ++j) z += std::exp(in.logits[i * in.a + j] - mx);
    const double logp = in.logits[i * in.a + in.actions[i]] - mx - std::log(z);
    const double shift[6] = {0.5, -0.5, 0.05, -0.05, 0.3, -0.1};
    in.old_logp.push_back(logp + shift[i]);
  }
  return in;
}

}  // namespace

TEST(PolicyLoss, PpoAndA2cEqualTheReferenceAndSoDoTheirGradients) {
  const LossInputs in = loss_inputs();
  const LossCoefficients c{0.5, 0.01, 0.2};
  for (bool ppo : {true, false}) {
    Tensor logits = Tensor::from_vector(in.logits, {in.m, in.a});
    Tensor values = Tensor::from_vector(in.values, {in.m});
    logits.set_requires_grad(true);
    values.set_requires_grad(true);
    const Tensor acts = Tensor::from_vector(in.actions, {in.m});
    const Tensor adv = Tensor::from_vector(in.adv, {in.m});
    const Tensor ret = Tensor::from_vector(in.ret, {in.m});
    const Tensor old = Tensor::from_vector(in.old_logp, {in.m});
    const PolicyLoss loss = ppo ? ppo_loss(logits, values, acts, old, adv, ret, c)
                                : a2c_loss(logits, values, acts, adv, ret, c);
    const double expected = reference_loss(in, in.logits, in.values, ppo, c);
    EXPECT_NEAR(loss.total.item<double>(), expected, 1e-12) << (ppo ? "ppo" : "a2c");
    if (ppo) {
      // The shifts 0.5, -0.5 and 0.3 put the ratio outside [0.8, 1.2]; 0.05, -0.05, -0.1 not.
      EXPECT_NEAR(loss.clip_fraction, 3.0 / 6.0, 1e-12);
    }
    loss.total.backward();
    // The gradient against central differences of the reference.
    const Tensor gl = logits.grad().contiguous(), gv = values.grad().contiguous();
    const double eps = 1e-6;
    for (int64_t k = 0; k < in.m * in.a; ++k) {
      auto up = in.logits, down = in.logits;
      up[k] += eps, down[k] -= eps;
      const double fd = (reference_loss(in, up, in.values, ppo, c) -
                         reference_loss(in, down, in.values, ppo, c)) /
                        (2 * eps);
      EXPECT_NEAR(gl.data<double>()[k], fd, 1e-7) << "logit " << k;
    }
    for (int64_t i = 0; i < in.m; ++i) {
      auto up = in.values, down = in.values;
      up[i] += eps, down[i] -= eps;
      const double fd = (reference_loss(in, in.logits, up, ppo, c) -
                         reference_loss(in, in.logits, down, ppo, c)) /
                        (2 * eps);
      EXPECT_NEAR(gv.data<double>()[i], fd, 1e-7) << "value " << i;
    }
  }
  // A clipped sample passes no gradient through its ratio: with every ratio far outside the
  // range on the side the advantage pushes, the policy gradient is that of the entropy alone.
  LossInputs far = in;
  for (int64_t i = 0; i < far.m; ++i) far.old_logp[i] -= far.adv[i] > 0 ? 2.0 : -2.0;
  Tensor logits = Tensor::from_vector(far.logits, {far.m, far.a});
  logits.set_requires_grad(true);
  const LossCoefficients no_entropy{0.5, 0.0, 0.2};
  ppo_loss(logits, Tensor::from_vector(far.values, {far.m}),
           Tensor::from_vector(far.actions, {far.m}), Tensor::from_vector(far.old_logp, {far.m}),
           Tensor::from_vector(far.adv, {far.m}), Tensor::from_vector(far.ret, {far.m}), no_entropy)
      .total.backward();
  const Tensor g = logits.grad().contiguous();
  for (int64_t k = 0; k < far.m * far.a; ++k) EXPECT_EQ(g.data<double>()[k], 0.0) << k;
}

TEST(ActorCritic, StepFormEqualsTheRolloutFormAcrossEpisodeStarts) {
  const std::vector<json> mixers = {
      {{"type", "arelit"}, {"heads", 2}, {"head_dim", 8}, {"eta", 2}, {"r", 2}},
      {{"type", "relit"}, {"heads", 2}, {"head_dim", 8}, {"eta", 2}},
      {{"type", "transformer_xl"}, {"heads", 2}, {"head_dim", 8}, {"memory", 5}},
      {{"type", "gru"}, {"hidden", 24}},
      {{"type", "lstm"}, {"hidden", 24}}};
  for (const json& mixer : mixers) {
    ActorCritic agent(small_model(mixer, 16), 16, 4, 16, 3);
    const int64_t n = 2, t = 12;
    Tensor obs = random({n, t, 16}, DType::f32, 5);
    Tensor first = Tensor::zeros({n, t});
    first.select(0, 0).select(0, 0).fill_(1.0);
    first.select(0, 0).select(0, 7).fill_(1.0);
    first.select(0, 1).select(0, 4).fill_(1.0);
    State s = agent.init_state(n);
    ActorCriticOutput whole;
    {
      NoGradGuard no_grad;
      whole = agent.forward(obs, &s, first);
    }
    State st = agent.init_state(n);
    for (int64_t i = 0; i < t; ++i) {
      const ActorCriticOutput o =
          agent.step(obs.select(1, i).contiguous(), st, first.select(1, i).contiguous());
      EXPECT_TRUE(all_close(o.logits, whole.logits.select(1, i).contiguous(), 2e-4))
          << mixer.dump() << " step " << i;
      EXPECT_TRUE(all_close(o.values, whole.values.select(1, i).contiguous(), 2e-4))
          << mixer.dump() << " step " << i;
    }
  }
}

TEST(RlTraining, MemorylessAgentFailsTheTMazeWhereTheRecurrentOneSolvesIt) {
  TempDir dir;
  const json maze = {{"type", "tmazev2"}, {"corridor", 4}};
  const std::vector<json> mixers = {
      {{"type", "gru"}, {"hidden", 32}},
      {{"type", "arelit"}, {"heads", 2}, {"head_dim", 16}, {"eta", 4}, {"r", 2}}};
  for (const json& mixer : mixers) {
    RlConfig c = small_run(dir / "memory", maze, mixer);
    c.seed = 2;
    c.env_steps = 8 * 16 * 400;  // about 3 s
    c.eval_episodes = 200;
    c.window = 100;
    const RlResult with_memory = train_rl(c, false);
    c.memoryless = true;
    c.out_dir = dir / "memoryless";
    const RlResult without = train_rl(c, false);
    // Guessing wins half the episodes (200 episodes: sd 0.035); a state that does not carry
    // the cue to the junction cannot pass 0.9.
    EXPECT_GE(with_memory.eval.success, 0.9) << mixer.dump() << with_memory.to_json().dump();
    EXPECT_LE(without.eval.success, 0.65) << mixer.dump() << without.to_json().dump();
    EXPECT_GE(without.eval.success, 0.35) << mixer.dump();  // it learned the walk and guesses
    EXPECT_GT(with_memory.steps_to_solve, 0) << mixer.dump();
    EXPECT_EQ(without.steps_to_solve, -1) << mixer.dump();
    EXPECT_TRUE(std::filesystem::exists(dir / "memory/curves.svg"));
    EXPECT_TRUE(std::filesystem::exists(dir / "memory/result.json"));
  }
}

TEST(RlTraining, ResumeContinuesBitwiseForA2cAndPpo) {
  for (const std::string algo : {"a2c", "ppo"}) {
    TempDir dir;
    RlConfig c =
        small_run(dir / "whole", kMaze,
                  {{"type", "arelit"}, {"heads", 2}, {"head_dim", 8}, {"eta", 2}, {"r", 2}});
    c.algo = algo;
    c.minibatches = 2;
    c.epochs = 2;
    c.normalize_advantages = algo == "ppo";
    c.checkpoint_every = 100;
    train_rl(c, false);
    RlConfig half = c;
    half.out_dir = dir / "halves";
    half.env_steps = c.env_steps / 2;
    train_rl(half, false);
    half.env_steps = c.env_steps;
    train_rl(half, true);
    const CheckpointInfo a = read_checkpoint_info(dir / "whole/checkpoint.safetensors");
    const CheckpointInfo b = read_checkpoint_info(dir / "halves/checkpoint.safetensors");
    EXPECT_EQ(a.weights_sha256, b.weights_sha256) << algo;
    EXPECT_EQ(a.task, b.task) << algo;  // every environment copy and the recent episodes
    EXPECT_EQ(a.progress.step, 4);
    EXPECT_EQ(b.progress.step, 4);
    EXPECT_EQ(a.progress.rngs.at("sampler").offset(), b.progress.rngs.at("sampler").offset());
    // Resuming a finished run, or with another environment, is refused by name.
    expect_error([&] { train_rl(half, true); }, {"already took"});
    RlConfig other = half;
    other.env = {{"type", "tmazev2"}, {"corridor", 7}};
    other.env_steps *= 2;
    expect_error([&] { train_rl(other, true); }, {"--resume", "environment"});
  }
}

TEST(RlTraining, PpoMinibatchesReplayWhatTheAgentDid) {
  // With a learning rate too small to move the policy, every PPO minibatch (a group of lanes
  // replayed from its slice of the carried state) must give back the log-probabilities the agent
  // acted with: no ratio clipped, no drift. A lane mixed up with another, or a state slice taken
  // from the wrong lanes, would show here.
  const std::vector<json> mixers = {
      {{"type", "arelit"}, {"heads", 2}, {"head_dim", 8}, {"eta", 2}, {"r", 2}},
      {{"type", "transformer_xl"}, {"heads", 2}, {"head_dim", 8}, {"memory", 5}},
      {{"type", "lstm"}, {"hidden", 16}}};
  for (const json& mixer : mixers) {
    TempDir dir;
    RlConfig c = small_run(dir.str(), kMaze, mixer);
    c.algo = "ppo";
    c.lr = 1e-12;
    c.minibatches = 4;
    c.epochs = 2;
    c.env_steps = 8 * 16 * 3;
    train_rl(c, false);
    std::ifstream log(dir / "metrics.jsonl");
    std::string line;
    int updates = 0;
    while (std::getline(log, line)) {
      const json r = json::parse(line);
      EXPECT_EQ(r.at("clip_fraction").get<double>(), 0.0) << mixer.dump() << line;
      EXPECT_LT(std::abs(r.at("approx_kl").get<double>()), 1e-6) << mixer.dump() << line;
      ++updates;
    }
    EXPECT_EQ(updates, 3);
  }
}

TEST(RlTraining, PpoWithOneMinibatchTakesTheA2cGradientOnItsFirstPass) {
  // On its first pass PPO's ratio is 1, so its gradient is A2C's: -mean(A grad log pi), with
  // GAE + V equal to the lambda-returns (tested above). With one minibatch of all lanes in a
  // shuffled order, the advantages must still meet their own lanes: the gradient norms agree.
  TempDir dir;
  RlConfig c = small_run(dir / "a2c", kMaze,
                         {{"type", "arelit"}, {"heads", 2}, {"head_dim", 8}, {"eta", 2}, {"r", 2}});
  c.env_steps = 8 * 16;
  c.clip_grad = 1e9;  // measured, never clipped
  train_rl(c, false);
  c.algo = "ppo";
  c.epochs = 1;
  c.minibatches = 1;
  c.out_dir = dir / "ppo";
  train_rl(c, false);
  auto first_update = [](const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return json::parse(line);
  };
  const json a = first_update(dir / "a2c/metrics.jsonl"),
             p = first_update(dir / "ppo/metrics.jsonl");
  const double ga = a.at("grad_norm").get<double>(), gp = p.at("grad_norm").get<double>();
  EXPECT_GT(ga, 0);
  EXPECT_NEAR(gp, ga, 1e-6 * ga) << a.dump() << "\n" << p.dump();
  EXPECT_NEAR(p.at("value_loss").get<double>(), a.at("value_loss").get<double>(),
              1e-5 * a.at("value_loss").get<double>());
  EXPECT_NEAR(p.at("entropy").get<double>(), a.at("entropy").get<double>(), 1e-6);
}

TEST(RlConfig, BadValuesAreRefusedByName) {
  const json good = {{"env", kMaze},
                     {"model", small_model({{"type", "gru"}})},
                     {"envs", 4},
                     {"rollout", 8},
                     {"env_steps", 64}};
  EXPECT_NO_THROW(RlConfig::from_json(good));
  auto with = [&](const char* k, const json& v) {
    json j = good;
    j[k] = v;
    return j;
  };
  expect_error([&] { RlConfig::from_json(with("algo", "dqn")); }, {"algo", "a2c"});
  expect_error([&] { RlConfig::from_json(with("minibatches", 3)); }, {"minibatches"});
  expect_error([&] { RlConfig::from_json(with("gamma", 1.5)); }, {"gamma"});
  expect_error([&] { RlConfig::from_json(with("env_steps", 10)); }, {"env_steps"});
  expect_error([&] { RlConfig::from_json(with("envs", 0)); }, {"envs"});
  expect_error([&] { RlConfig::from_json(with("lr", "fast")); }, {"lr"});
  expect_error([&] { RlConfig::from_json(with("rolout", 8)); }, {"rolout"});
  json no_env = good;
  no_env.erase("env");
  expect_error([&] { RlConfig::from_json(no_env); }, {"env"});
  // An unknown environment fails when the run builds it, naming the ones that exist.
  TempDir dir;
  RlConfig c = RlConfig::from_json(good);
  c.out_dir = dir.str();
  c.env = {{"type", "no_such_env"}};
  expect_error([&] { train_rl(c, false); }, {"unknown environment", "tmazev2"});
  // A sweep names a model override of a model it lacks.
  const json sweep = {{"models", {{"gru", small_model({{"type", "gru"}})}}},
                      {"model_overrides", {{"lstm", {{"lr", 0.1}}}}},
                      {"envs", {kMaze}}};
  expect_error([&] { RlSweep::from_json(sweep); }, {"model_overrides", "lstm"});
  const json escaping = {{"models", {{"../gru", small_model({{"type", "gru"}})}}},
                         {"envs", {kMaze}}};
  expect_error([&] { RlSweep::from_json(escaping); }, {"model name", "../gru"});
}

TEST(RlSweep, TrainsEveryCellAndTabulatesThem) {
  TempDir dir;
  const json sweep = {
      {"base", {{"envs", 4}, {"rollout", 8}, {"env_steps", 64}, {"eval_episodes", 4}}},
      {"models",
       {{"gru", small_model({{"type", "gru"}, {"hidden", 8}}, 8)},
        {"arelit", small_model({{"type", "arelit"}, {"heads", 1}, {"head_dim", 8}}, 8)}}},
      {"envs", {{{"type", "tmazev2"}, {"corridor", 3}}, {{"type", "tmazev2"}, {"corridor", 5}}}},
      {"seeds", {1, 2}},
      {"out_dir", dir / "sweep"}};
  const RlSweep s = RlSweep::from_json(sweep);
  const auto rows = run_rl_sweep(s);
  ASSERT_EQ(rows.size(), 8u);
  const std::string table = rl_sweep_markdown(rows);
  EXPECT_NE(table.find("| tmazev2 corridor 3 | gru |"), std::string::npos) << table;
  EXPECT_NE(table.find("| tmazev2 corridor 5 | arelit |"), std::string::npos) << table;
  int rows_in_table = 0;
  for (size_t at = 0; at < table.size(); at = table.find('\n', at) + 1) {
    rows_in_table += table[at] == '|';
    if (table.find('\n', at) == std::string::npos) break;
  }
  EXPECT_EQ(rows_in_table, 2 + 4);  // header, rule, one row per (environment, model)
  EXPECT_NE(table.find("- tmazev2 corridor 3: optimal return 3.800, best memoryless return 1.300"),
            std::string::npos)
      << table;
  write_rl_sweep_plot(dir / "sweep/curves.svg", rows);
  EXPECT_TRUE(std::filesystem::exists(dir / "sweep/curves.svg"));
  // A second run reuses the finished cells.
  const auto again = run_rl_sweep(s);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(again[i].result.final_return, rows[i].result.final_return);
    EXPECT_EQ(again[i].result.env_steps, rows[i].result.env_steps);
  }
}
