// The actor-critic training loop (see rl_trainer.h).
#include "rill/rl/rl_trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>

#include "rill/autograd/grad_mode.h"
#include "rill/backend/cpu/denormals.h"
#include "rill/core/error.h"
#include "rill/core/rng.h"
#include "rill/io/json_file.h"
#include "rill/ops/index.h"
#include "rill/optim/adamw.h"
#include "rill/optim/clip.h"
#include "rill/rl/policy_loss.h"
#include "rill/rl/returns.h"
#include "rill/rl/vec_env.h"
#include "rill/train/checkpoint.h"
#include "rill/train/metrics.h"

namespace rill::rl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Salts that separate the run's random streams: environments, the action sampler, evaluation.
constexpr uint64_t kSamplerSalt = 0x5a3b1e5d00000001ULL, kEvalSalt = 0xe7a1000000000002ULL;

Tensor floats(const std::vector<float>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape);
}

// The episode-start flags [N] the agent steps with: the environments', or all set when the
// agent is memoryless.
Tensor flags(const std::vector<uint8_t>& v, bool memoryless) {
  std::vector<float> f(v.begin(), v.end());
  if (memoryless) f.assign(v.size(), 1.f);
  return Tensor::from_vector(f, {int64_t(v.size())});
}

// Draws one action per lane from softmax(logits [N, A]) with uniforms at the generator's next
// N counters (or takes the argmax); writes the log-probabilities of the actions taken.
std::vector<int64_t> choose_actions(const Tensor& logits, Generator* sampler,
                                    std::vector<float>* log_probs) {
  const Tensor l = logits.to(DType::f64).contiguous();
  const int64_t n = l.size(0), a = l.size(1);
  const double* p = l.data<double>();
  const uint64_t first = sampler ? sampler->advance(uint64_t(n)) : 0;
  std::vector<int64_t> actions(n);
  if (log_probs) log_probs->resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const double* row = p + i * a;
    const double mx = *std::max_element(row, row + a);
    double z = 0;
    for (int64_t j = 0; j < a; ++j) z += std::exp(row[j] - mx);
    int64_t pick = std::max_element(row, row + a) - row;
    if (sampler) {
      const double u = uniform_at(sampler->seed(), first + uint64_t(i)) * z;
      double c = 0;
      pick = a - 1;  // where rounding leaves u above the last partial sum
      for (int64_t j = 0; j < a; ++j) {
        c += std::exp(row[j] - mx);
        if (u < c) {
          pick = j;
          break;
        }
      }
    }
    actions[i] = pick;
    if (log_probs) (*log_probs)[i] = float(row[pick] - mx - std::log(z));
  }
  return actions;
}

// The lanes `idx` of a batch-first state.
State select_lanes(const State& s, const Tensor& idx) {
  State out;
  for (const auto& [name, t] : s.tensors()) out.set(name, index_select(t, 0, idx));
  return out;
}

void normalize(std::vector<double>& v) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / double(v.size())) + 1e-8;
  for (double& x : v) x = (x - mean) / sd;
}

std::vector<float> to_floats(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// The rollout of one update, every array [N, T] (obs [N, T, F]) row-major by lane.
struct Rollout {
  std::vector<float> obs, first, rewards, values, log_probs, bootstrap;
  std::vector<uint8_t> dones;
  std::vector<int64_t> actions;
};

// The steps of the samples of lanes `lanes` (all T steps of each), as flat [M] indices.
Tensor lane_samples(const std::vector<int64_t>& lanes, int64_t steps) {
  std::vector<int64_t> idx;
  for (int64_t n : lanes)
    for (int64_t t = 0; t < steps; ++t) idx.push_back(n * steps + t);
  return Tensor::from_vector(idx, {int64_t(idx.size())});
}

struct RecentEpisodes {
  std::deque<EpisodeRecord> episodes;
  int64_t window = 100;
  void add(const EpisodeRecord& e) {
    episodes.push_back(e);
    if (int64_t(episodes.size()) > window) episodes.pop_front();
  }
  double mean_return() const {
    double s = 0;
    for (const auto& e : episodes) s += e.ret;
    return episodes.empty() ? 0 : s / double(episodes.size());
  }
  double success() const {
    double s = 0;
    for (const auto& e : episodes) s += e.success ? 1 : 0;
    return episodes.empty() ? 0 : s / double(episodes.size());
  }
  json save() const {
    json a = json::array();
    for (const auto& e : episodes) a.push_back(episode_record_json(e));
    return a;
  }
  void load(const json& a) {
    episodes.clear();
    for (const json& e : a) episodes.push_back(episode_record_from_json(e));
  }
};

// Solved: the window is full and its success rate (or, without success, its mean return as a
// fraction of the optimal one) reaches the threshold.
bool window_solved(const RecentEpisodes& r, const EnvSpec& spec, double fraction) {
  if (int64_t(r.episodes.size()) < r.window) return false;
  if (spec.has_success) return r.success() >= fraction;
  if (std::isfinite(spec.optimal_return) && spec.optimal_return > 0)
    return r.mean_return() >= fraction * spec.optimal_return;
  return false;
}

}  // namespace

std::string rl_checkpoint_path(const std::string& out_dir) {
  return out_dir + "/checkpoint.safetensors";
}

json RlResult::to_json() const {
  return {{"updates", updates},
          {"env_steps", env_steps},
          {"episodes", episodes},
          {"seconds", seconds},
          {"env_steps_per_s", env_steps_per_s},
          {"final_return", final_return},
          {"final_success", final_success},
          {"steps_to_solve", steps_to_solve},
          {"eval",
           {{"episodes", eval.episodes},
            {"mean_return", eval.mean_return},
            {"success", eval.success},
            {"mean_length", eval.mean_length}}},
          {"step_us", step_us},
          {"state_bytes", state_bytes},
          {"parameters", parameters},
          {"interrupted", interrupted},
          {"out_of_time", out_of_time}};
}

RlResult RlResult::from_json(const json& j) {
  RlResult r;
  try {
    r.updates = j.at("updates"), r.env_steps = j.at("env_steps"), r.episodes = j.at("episodes");
    r.seconds = j.at("seconds"), r.env_steps_per_s = j.at("env_steps_per_s");
    r.final_return = j.at("final_return"), r.final_success = j.at("final_success");
    r.steps_to_solve = j.at("steps_to_solve");
    const json& e = j.at("eval");
    r.eval = {e.at("episodes").get<int64_t>(), e.at("mean_return").get<double>(),
              e.at("success").get<double>(), e.at("mean_length").get<double>()};
    r.step_us = j.at("step_us"), r.state_bytes = j.at("state_bytes");
    r.parameters = j.at("parameters");
    r.interrupted = j.at("interrupted"), r.out_of_time = j.at("out_of_time");
  } catch (const json::exception& e) {
    fail("[rl] a malformed run result: {}", e.what());
  }
  return r;
}

PolicyScore evaluate_policy(ActorCritic& agent, const json& env, int64_t episodes, uint64_t seed,
                            bool greedy, bool memoryless, int64_t lanes) {
  RILL_CHECK(episodes >= 1, "[rl] evaluation needs at least one episode, got {}", episodes);
  lanes = std::min(lanes, episodes);
  VecEnv venv(env, lanes, seed);
  const int64_t f = venv.spec().obs_dim;
  // Lane i plays its first quota[i] episodes; what it plays after is not counted (so short
  // episodes are not over-represented).
  std::vector<int64_t> quota(lanes, episodes / lanes), played(lanes, 0);
  for (int64_t i = 0; i < episodes % lanes; ++i) ++quota[i];
  Generator sampler(seed ^ kSamplerSalt);
  State state = agent.init_state(lanes);
  PolicyScore score;
  std::vector<float> rewards;
  std::vector<uint8_t> dones;
  while (score.episodes < episodes) {
    const ActorCriticOutput out =
        agent.step(floats(venv.obs(), {lanes, f}), state, flags(venv.first(), memoryless));
    venv.step(choose_actions(out.logits, greedy ? nullptr : &sampler, nullptr), rewards, dones);
    for (const EpisodeRecord& e : venv.take_finished()) {
      if (played[e.copy]++ >= quota[e.copy]) continue;
      ++score.episodes;
      score.mean_return += e.ret;
      score.success += e.success ? 1 : 0;
      score.mean_length += double(e.length);
    }
  }
  score.mean_return /= double(episodes);
  score.success /= double(episodes);
  score.mean_length /= double(episodes);
  return score;
}

double step_microseconds(ActorCritic& agent, int64_t steps) {
  // One agent at batch 1 runs on one thread: waking a pool for every small op costs more than
  // the op.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Tensor obs = Tensor::zeros({1, agent.obs_dim});
  const Tensor first = Tensor::zeros({1});
  std::vector<double> times;
  for (int rep = 0; rep < 3; ++rep) {
    State state = agent.init_state(1);
    for (int i = 0; i < 10; ++i) agent.step(obs, state, first);  // warm-up
    const double t0 = steady_seconds();
    for (int64_t i = 0; i < steps; ++i) agent.step(obs, state, first);
    times.push_back((steady_seconds() - t0) / double(steps) * 1e6);
  }
  omp_set_num_threads(threads);
  std::sort(times.begin(), times.end());
  return times[1];
}

RlResult train_rl(const RlConfig& cfg, bool resume, const RlEvents& ev) {
  cfg.validate();
  const cpu::FlushDenormalsGuard flush;
  const auto clock = ev.clock ? ev.clock : steady_seconds;
  auto say = [&](const std::string& s) {
    if (ev.on_message) ev.on_message(s);
  };
  const int64_t n = cfg.envs, t_len = cfg.rollout;
  VecEnv venv(cfg.env, n, cfg.seed);
  const EnvSpec spec = venv.spec();
  const int64_t f = spec.obs_dim;
  ActorCritic agent(cfg.model, f, spec.actions, cfg.head_hidden, cfg.seed);
  optim::AdamW opt(optim::param_groups(agent, 0.0), cfg.lr, {0.9, 0.999, 1e-8});
  State state = agent.init_state(n);
  Generator sampler(cfg.seed ^ kSamplerSalt);
  RecentEpisodes recent;
  recent.window = cfg.window;
  TrainingProgress progress;  // step: updates; data_position: environment steps
  int64_t episodes = 0, steps_to_solve = -1;

  fs::create_directories(cfg.out_dir);
  const std::string ckpt = rl_checkpoint_path(cfg.out_dir);
  const std::string log_path = cfg.out_dir + "/metrics.jsonl";
  const json model_json = agent.config_json(), run_json = cfg.to_json();
  auto task_json = [&]() {
    return json{{"type", "rl"},           {"env", cfg.env},
                {"vec_env", venv.save()}, {"recent", recent.save()},
                {"episodes", episodes},   {"steps_to_solve", steps_to_solve}};
  };
  if (resume) {
    RILL_CHECK(fs::exists(ckpt), "[rl] --resume: no checkpoint at {}", ckpt);
    const CheckpointInfo info = read_checkpoint_info(ckpt);
    RILL_CHECK(info.task.is_object() && info.task.value("type", "") == "rl" &&
                   info.task.contains("env") && info.task["env"] == cfg.env,
               "[rl] --resume: {} was trained on {}, but this config gives the environment {}",
               ckpt, info.task.dump().substr(0, 200), cfg.env.dump());
    RILL_CHECK(info.run.is_object() && info.run.value("envs", int64_t(0)) == cfg.envs &&
                   info.run.value("rollout", int64_t(0)) == cfg.rollout &&
                   info.run.value("seed", uint64_t(0)) == cfg.seed &&
                   info.run.value("algo", "") == cfg.algo,
               "[rl] --resume: {} was trained with other envs, rollout, seed or algorithm "
               "than this config gives",
               ckpt);
    load_checkpoint(ckpt, model_json, agent, &opt, &state);
    try {
      venv.load(info.task.at("vec_env"));
      recent.load(info.task.at("recent"));
      episodes = info.task.at("episodes").get<int64_t>();
      steps_to_solve = info.task.at("steps_to_solve").get<int64_t>();
    } catch (const json::exception& e) {
      fail("[rl] --resume: {} holds a malformed run state: {}", ckpt, e.what());
    }
    progress = info.progress;
    auto it = progress.rngs.find("sampler");
    RILL_CHECK(it != progress.rngs.end(), "[rl] {} lacks the action sampler's state", ckpt);
    sampler = it->second;
    for (auto& [name, g] : agent.trunk->generators()) {  // dropout, where the model has it
      auto saved = progress.rngs.find("model." + name);
      RILL_CHECK(saved != progress.rngs.end(), "[rl] {} lacks the RNG state of {}", ckpt, name);
      *g = saved->second;
    }
    RILL_CHECK(progress.data_position < uint64_t(cfg.env_steps),
               "[rl] --resume: the run in {} already took {} environment steps of {}; raise "
               "env_steps to train further",
               cfg.out_dir, progress.data_position, cfg.env_steps);
  } else {
    fs::remove(log_path);
  }
  write_json_file(cfg.out_dir + "/config.json", run_json);
  MetricsLog log(log_path);
  auto save = [&](double elapsed) {
    progress.elapsed_s = elapsed;
    progress.rngs = {{"sampler", sampler}};
    for (auto& [name, g] : agent.trunk->generators()) progress.rngs["model." + name] = *g;
    save_checkpoint(ckpt, {model_json, task_json(), run_json, &agent, &opt, &state, progress});
  };
  auto plot = [&]() {  // the return and, where episodes succeed, the success rate
    const std::string title = fmt::format("{} on {}", cfg.model.value("type", "stack"), spec.name);
    std::vector<Plot> plots = {
        {title + ": return", "environment steps", "mean return", {{"return", "#1f77b4", {}}}},
        {title + ": success", "environment steps", "success rate", {{"success", "#d62728", {}}}}};
    if (!spec.has_success) plots.pop_back();
    plots[0].curves[0].points = points_from_log(log_path, "env_steps", "mean_return");
    if (spec.has_success)
      plots[1].curves[0].points = points_from_log(log_path, "env_steps", "success");
    write_svg_plots(cfg.out_dir + "/curves.svg", plots);
  };

  say(
      fmt::format("training an agent of {} parameters ({}) on {} with {}: {} lanes x {} steps "
                  "per update, {} environment steps",
                  agent.num_parameters(), model_json["trunk"].value("type", "stack"), spec.name,
                  cfg.algo, n, t_len, cfg.env_steps));
  agent.train();
  const LossCoefficients coef{cfg.vf_coef, cfg.ent_coef, cfg.ppo_clip};
  const double t0 = clock(), elapsed0 = progress.elapsed_s;
  const int64_t steps0 = int64_t(progress.data_position), episodes0 = episodes;
  RlResult result;
  Rollout ro;
  std::vector<float> step_rewards, step_log_probs;
  std::vector<uint8_t> step_dones;
  while (int64_t(progress.data_position) < cfg.env_steps) {
    // Act: T steps in every lane, no tape.
    const State start = state.clone();
    ro.obs.assign(n * t_len * f, 0.f);
    for (auto* v : {&ro.first, &ro.rewards, &ro.values, &ro.log_probs}) v->assign(n * t_len, 0.f);
    ro.dones.assign(n * t_len, 0);
    ro.actions.assign(n * t_len, 0);
    for (int64_t t = 0; t < t_len; ++t) {
      const ActorCriticOutput out =
          agent.step(floats(venv.obs(), {n, f}), state, flags(venv.first(), cfg.memoryless));
      const std::vector<int64_t> actions = choose_actions(out.logits, &sampler, &step_log_probs);
      const Tensor v = out.values.contiguous();
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = i * t_len + t;
        std::copy_n(&venv.obs()[i * f], f, &ro.obs[k * f]);
        ro.first[k] = cfg.memoryless ? 1.f : float(venv.first()[i]);
        ro.values[k] = v.data<float>()[i];
        ro.actions[k] = actions[i];
        ro.log_probs[k] = step_log_probs[i];
      }
      venv.step(actions, step_rewards, step_dones);
      for (int64_t i = 0; i < n; ++i) {
        ro.rewards[i * t_len + t] = step_rewards[i];
        ro.dones[i * t_len + t] = step_dones[i];
      }
      for (const EpisodeRecord& e : venv.take_finished()) {
        recent.add(e);
        ++episodes;
      }
    }
    progress.data_position += uint64_t(n * t_len);
    {
      State after = state.clone();  // V(s_T): a look ahead that leaves the carried state alone
      const Tensor v =
          agent.step(floats(venv.obs(), {n, f}), after, flags(venv.first(), cfg.memoryless))
              .values.contiguous();
      ro.bootstrap.assign(v.data<float>(), v.data<float>() + n);
    }

    // Learn: replay the rollout in the parallel form from the stored start state.
    std::vector<double> returns, advantages;
    if (cfg.algo == "a2c") {
      returns = lambda_returns(n, t_len, ro.rewards, ro.dones, ro.values, ro.bootstrap, cfg.gamma,
                               cfg.lambda);
      advantages.resize(returns.size());
      for (size_t k = 0; k < returns.size(); ++k) advantages[k] = returns[k] - ro.values[k];
    } else {
      advantages =
          gae(n, t_len, ro.rewards, ro.dones, ro.values, ro.bootstrap, cfg.gamma, cfg.lambda);
      returns.resize(advantages.size());
      for (size_t k = 0; k < returns.size(); ++k) returns[k] = advantages[k] + ro.values[k];
    }
    const Tensor obs_all = floats(ro.obs, {n, t_len, f});
    const Tensor first_all = floats(ro.first, {n, t_len});
    const Tensor actions_all = Tensor::from_vector(ro.actions, {n * t_len});
    const Tensor returns_all = floats(to_floats(returns), {n * t_len});
    const Tensor old_all = floats(ro.log_probs, {n * t_len});
    PolicyLoss last;
    double grad_norm = 0;
    auto learn = [&](const std::vector<int64_t>& lanes) {
      const int64_t m = int64_t(lanes.size());
      const Tensor lane_idx = Tensor::from_vector(lanes, {m});
      const Tensor samples = lane_samples(lanes, t_len);
      std::vector<double> adv(size_t(m * t_len));
      for (int64_t j = 0; j < m; ++j)
        std::copy_n(&advantages[lanes[j] * t_len], t_len, &adv[j * t_len]);
      if (cfg.normalize_advantages) normalize(adv);
      // Every lane in order (A2C, or PPO with one minibatch drawn in order): no gathering.
      const bool all = m == n && std::is_sorted(lanes.begin(), lanes.end());
      State s = all ? start.clone() : select_lanes(start, lane_idx);
      s.detach();
      const ActorCriticOutput out =
          agent.forward(all ? obs_all : index_select(obs_all, 0, lane_idx), &s,
                        all ? first_all : index_select(first_all, 0, lane_idx));
      const Tensor logits = out.logits.reshape({m * t_len, spec.actions});
      const Tensor values = out.values.reshape({m * t_len});
      const Tensor acts = all ? actions_all : index_select(actions_all, 0, samples);
      const Tensor rets = all ? returns_all : index_select(returns_all, 0, samples);
      const Tensor adv_t = floats(to_floats(adv), {m * t_len});
      last = cfg.algo == "a2c"
                 ? a2c_loss(logits, values, acts, adv_t, rets, coef)
                 : ppo_loss(logits, values, acts, all ? old_all : index_select(old_all, 0, samples),
                            adv_t, rets, coef);
      opt.zero_grad();
      last.total.backward();
      if (cfg.clip_grad > 0) grad_norm = optim::clip_grad_norm(agent.parameters(), cfg.clip_grad);
      opt.step();
    };
    std::vector<int64_t> lanes(n);
    for (int64_t i = 0; i < n; ++i) lanes[i] = i;
    if (cfg.algo == "a2c") {
      learn(lanes);
    } else {
      const int64_t per = n / cfg.minibatches;
      for (int64_t e = 0; e < cfg.epochs; ++e) {
        // A fresh order of lanes each epoch, from the sampler (so it resumes exactly).
        const uint64_t first = sampler.advance(uint64_t(n));
        for (int64_t i = n - 1; i > 0; --i) {
          const int64_t j = int64_t(uniform_at(sampler.seed(), first + uint64_t(i)) * (i + 1));
          std::swap(lanes[i], lanes[std::min(j, i)]);
        }
        for (int64_t b = 0; b < cfg.minibatches; ++b)
          learn(std::vector<int64_t>(lanes.begin() + b * per, lanes.begin() + (b + 1) * per));
      }
    }
    ++progress.step;
    RILL_CHECK(std::isfinite(last.total.item<double>()),
               "[rl] the loss became {} at update {} (lower lr or clip the gradient)",
               last.total.item<double>(), progress.step);

    const double elapsed = elapsed0 + (clock() - t0), here = clock() - t0;
    const int64_t env_steps = int64_t(progress.data_position);
    if (steps_to_solve < 0 && window_solved(recent, spec, cfg.solve_fraction))
      steps_to_solve = env_steps;
    RlUpdateEvent e;
    e.update = progress.step;
    e.env_steps = env_steps;
    e.env_steps_target = cfg.env_steps;
    e.episodes = episodes;
    e.mean_return = recent.mean_return();
    e.success = recent.success();
    e.has_success = spec.has_success;
    e.episodes_per_s = here > 0 ? double(episodes - episodes0) / here : 0;
    e.env_steps_per_s = here > 0 ? double(env_steps - steps0) / here : 0;
    e.elapsed_s = elapsed;
    if (ev.on_update) ev.on_update(e);
    json rec = {{"update", e.update},
                {"env_steps", env_steps},
                {"episodes", episodes},
                {"mean_return", e.mean_return},
                {"loss", last.total.item<double>()},
                {"policy_loss", last.policy},
                {"value_loss", last.value},
                {"entropy", last.entropy},
                {"grad_norm", grad_norm},
                {"env_steps_per_s", e.env_steps_per_s},
                {"episodes_per_s", e.episodes_per_s},
                {"elapsed_s", elapsed}};
    if (spec.has_success) rec["success"] = e.success;
    if (cfg.algo == "ppo")
      rec["clip_fraction"] = last.clip_fraction, rec["approx_kl"] = last.approx_kl;
    log.write(rec);

    result.out_of_time =
        cfg.time_limit_s > 0 && elapsed >= cfg.time_limit_s && env_steps < cfg.env_steps;
    result.interrupted = ev.should_stop && ev.should_stop();
    const bool last_update = env_steps >= cfg.env_steps || result.out_of_time || result.interrupted;
    if (progress.step % cfg.checkpoint_every == 0 || last_update) {
      save(elapsed);
      plot();
    }
    result.seconds = elapsed;
    result.env_steps_per_s = e.env_steps_per_s;
    if (result.interrupted) {
      say(fmt::format("interrupted: checkpoint saved at {} environment steps in {}", env_steps,
                      ckpt));
      break;
    }
    if (result.out_of_time) {
      say(fmt::format("time limit {:.0f} s reached at {} environment steps of {}", cfg.time_limit_s,
                      env_steps, cfg.env_steps));
      break;
    }
  }
  result.updates = progress.step;
  result.env_steps = int64_t(progress.data_position);
  result.episodes = episodes;
  result.final_return = recent.mean_return();
  result.final_success = recent.success();
  result.steps_to_solve = steps_to_solve;
  result.parameters = agent.num_parameters();
  result.state_bytes = agent.trunk->info(spec.max_steps).state_bytes;
  agent.eval();
  if (cfg.eval_episodes > 0 && !result.interrupted)
    result.eval = evaluate_policy(agent, cfg.env, cfg.eval_episodes, cfg.seed ^ kEvalSalt,
                                  cfg.eval_greedy, cfg.memoryless);
  result.step_us = step_microseconds(agent);
  write_json_file(cfg.out_dir + "/result.json", result.to_json());
  return result;
}

}  // namespace rill::rl
