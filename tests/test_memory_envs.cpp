// The memory environments of rill/rl/envs: the passive T-Maze of Ni et al. 2023
// (tmaze_passive), bsuite's memory chain (memory_len), POPGym's diagnostics (RepeatFirst,
// RepeatPrevious, Autoencode, CountRecall) and its Battleship, each at every difficulty.
// For every one: the oracle reaches the optimal return in the specified number of steps; a
// memoryless policy scores the closed-form memoryless return in expectation (or, where there is
// none, clearly below the optimum); the observations and rewards follow the specification step
// by step (checked by policies that remember the observations themselves, not by the oracle);
// episodes are pure functions of (seed, episode); a state saved mid-episode and loaded into a
// fresh environment continues identically; malformed states, bad configs and out-of-range
// actions are refused with rill::Error naming what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "rill/core/error.h"
#include "rill/rl/env.h"

using namespace rill;
using namespace rill::rl;
using nlohmann::json;

namespace {

const char* const kLevels[3] = {"easy", "medium", "hard"};
const char* const kPopgym[5] = {"popgym_repeat_first", "popgym_repeat_previous",
                                "popgym_autoencode", "popgym_count_recall", "popgym_battleship"};

std::vector<json> all_configs() {
  std::vector<json> c = {
      {{"type", "tmaze_passive"}, {"corridor", 1}},
      {{"type", "tmaze_passive"}, {"corridor", 4}},
      {{"type", "tmaze_passive"}, {"corridor", 25}},
      {{"type", "memory_len"}, {"length", 1}},
      {{"type", "memory_len"}, {"length", 5}},
      {{"type", "memory_len"}, {"length", 12}, {"bits", 3}},
  };
  for (const char* type : kPopgym)
    for (const char* level : kLevels) c.push_back({{"type", type}, {"difficulty", level}});
  return c;
}

// A policy sees the environment (for the oracle), the observation history (obs[0] is the reset
// observation, obs.back() the current one) and a random source.
using Policy =
    std::function<int64_t(const Env&, const std::vector<std::vector<float>>&, std::mt19937_64&)>;

struct Episode {
  std::vector<std::vector<float>> obs;  // reset, then one per step
  std::vector<int64_t> actions;
  std::vector<StepResult> steps;
  double ret = 0;
};

Episode run(Env& env, uint64_t seed, uint64_t episode, const Policy& policy,
            uint64_t policy_seed = 0) {
  std::mt19937_64 gen(policy_seed);
  Episode e;
  const size_t d = size_t(env.spec().obs_dim);
  std::vector<float> o(d, -7.f);
  env.reset(seed, episode, o.data());
  e.obs.push_back(o);
  for (int64_t t = 0; t < env.spec().max_steps; ++t) {
    const int64_t a = policy(env, e.obs, gen);
    std::fill(o.begin(), o.end(), -7.f);  // every entry must be written
    const StepResult r = env.step(a, o.data());
    e.obs.push_back(o);
    e.actions.push_back(a);
    e.steps.push_back(r);
    e.ret += r.reward;
    if (r.done()) break;
  }
  return e;
}

const Policy kOracle = [](const Env& env, const auto&, std::mt19937_64&) {
  return env.oracle_action();
};
const Policy kRandom = [](const Env& env, const auto&, std::mt19937_64& g) {
  return int64_t(g() % uint64_t(env.spec().actions));
};

int64_t argmax(const std::vector<float>& v, size_t from, size_t n) {
  return int64_t(std::max_element(v.begin() + long(from), v.begin() + long(from + n)) - v.begin() -
                 long(from));
}

// The mean return of a policy over episodes 0 .. n-1 of a seed, and its standard error.
struct Mean {
  double mean, se;
};
Mean mean_return(Env& env, const Policy& p, int64_t n, uint64_t seed) {
  double s = 0, s2 = 0;
  for (int64_t e = 0; e < n; ++e) {
    const double r = run(env, seed, uint64_t(e), p, uint64_t(e) + 1000).ret;
    s += r, s2 += r * r;
  }
  const double m = s / double(n), var = std::max(0.0, s2 / double(n) - m * m);
  return {m, std::sqrt(var / double(n - 1))};
}

// Statistical tolerance: a mean over independent episodes within 4.5 standard errors (plus
// 1e-9 for policies whose return does not vary) of its expectation; a correct environment fails
// this with probability below 1e-5.
void expect_mean(const Mean& m, double expected) {
  EXPECT_NEAR(m.mean, expected, 4.5 * m.se + 1e-9) << "standard error " << m.se;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_config_error(const json& config, const std::string& field) {
  SCOPED_TRACE(config.dump());
  EXPECT_THROW(make_env(config), Error);
  EXPECT_NE(error_of([&] { make_env(config); }).find("\"" + field + "\""), std::string::npos)
      << error_of([&] { make_env(config); });
}

int64_t oracle_steps(const Env& env) {
  // Battleship ends when the 12 ship tiles are hit; the others run a fixed number of steps.
  return env.spec().name.rfind("popgym_battleship", 0) == 0 ? 12 : env.spec().max_steps;
}

bool same_episode(const Episode& a, const Episode& b) {
  if (a.obs != b.obs || a.actions != b.actions || a.steps.size() != b.steps.size()) return false;
  for (size_t i = 0; i < a.steps.size(); ++i)
    if (a.steps[i].reward != b.steps[i].reward || a.steps[i].terminated != b.steps[i].terminated ||
        a.steps[i].truncated != b.steps[i].truncated || a.steps[i].success != b.steps[i].success)
      return false;
  return true;
}

}  // namespace

TEST(MemoryEnvs, AllRegistered) {
  const std::vector<std::string> names = registered_envs();
  for (const char* t :
       {"tmaze_passive", "memory_len", "popgym_repeat_first", "popgym_repeat_previous",
        "popgym_autoencode", "popgym_count_recall", "popgym_battleship"})
    EXPECT_NE(std::find(names.begin(), names.end(), t), names.end()) << t;
}

TEST(MemoryEnvs, SpecsMatchTheSpecification) {
  struct Row {
    json config;
    std::string name;
    int64_t obs_dim, actions, max_steps;
    double memoryless;  // NaN: none in closed form
    bool success;
  };
  const double nan = std::nan("");
  auto rf = [](double n) {
    const double q = (n / 4 - 1) / (n - 1);
    return (1 + (n - 2) * (2 * q - 1)) / (n - 1);
  };
  const std::vector<Row> rows = {
      {{{"type", "tmaze_passive"}, {"corridor", 7}},
       "tmaze_passive corridor 7",
       2,
       4,
       8,
       0.5,
       true},
      {{{"type", "tmaze_passive"}}, "tmaze_passive corridor 10", 2, 4, 11, 0.5, true},
      {{{"type", "memory_len"}, {"length", 30}},
       "memory_len length 30 bits 1",
       3,
       2,
       31,
       0.0,
       true},
      {{{"type", "memory_len"}, {"length", 1}, {"bits", 4}},
       "memory_len length 1 bits 4",
       6,
       2,
       2,
       1.0,
       true},
      {{{"type", "popgym_repeat_first"}},
       "popgym_repeat_first easy decks 1",
       4,
       4,
       51,
       rf(52),
       false},
      {{{"type", "popgym_repeat_first"}, {"difficulty", "medium"}},
       "popgym_repeat_first medium decks 8",
       4,
       4,
       415,
       rf(416),
       false},
      {{{"type", "popgym_repeat_first"}, {"difficulty", "hard"}},
       "popgym_repeat_first hard decks 16",
       4,
       4,
       831,
       rf(832),
       false},
      {{{"type", "popgym_repeat_previous"}, {"difficulty", "easy"}},
       "popgym_repeat_previous easy decks 1 k 4",
       4,
       4,
       51,
       -50.0 / 102.0,
       false},
      {{{"type", "popgym_repeat_previous"}, {"difficulty", "medium"}},
       "popgym_repeat_previous medium decks 2 k 32",
       4,
       4,
       103,
       -102.0 / 206.0,
       false},
      {{{"type", "popgym_repeat_previous"}, {"difficulty", "hard"}},
       "popgym_repeat_previous hard decks 3 k 64",
       4,
       4,
       155,
       -154.0 / 310.0,
       false},
      {{{"type", "popgym_autoencode"}, {"difficulty", "easy"}},
       "popgym_autoencode easy decks 1",
       5,
       4,
       103,
       -49.0 / 104.0,
       false},
      {{{"type", "popgym_autoencode"}, {"difficulty", "medium"}},
       "popgym_autoencode medium decks 2",
       5,
       4,
       207,
       -101.0 / 208.0,
       false},
      {{{"type", "popgym_autoencode"}, {"difficulty", "hard"}},
       "popgym_autoencode hard decks 3",
       5,
       4,
       311,
       -153.0 / 312.0,
       false},
      {{{"type", "popgym_count_recall"}, {"difficulty", "easy"}},
       "popgym_count_recall easy decks 1 colors",
       4,
       27,
       51,
       nan,
       false},
      {{{"type", "popgym_count_recall"}, {"difficulty", "medium"}},
       "popgym_count_recall medium decks 2 suits",
       8,
       27,
       103,
       nan,
       false},
      {{{"type", "popgym_count_recall"}, {"difficulty", "hard"}},
       "popgym_count_recall hard decks 4 ranks",
       26,
       17,
       207,
       nan,
       false},
      {{{"type", "popgym_battleship"}, {"difficulty", "easy"}},
       "popgym_battleship easy board 8",
       17,
       64,
       64,
       nan,
       true},
      {{{"type", "popgym_battleship"}, {"difficulty", "medium"}},
       "popgym_battleship medium board 10",
       21,
       100,
       100,
       nan,
       true},
      {{{"type", "popgym_battleship"}, {"difficulty", "hard"}},
       "popgym_battleship hard board 12",
       25,
       144,
       144,
       nan,
       true},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.config.dump());
    const EnvSpec s = make_env(row.config)->spec();
    EXPECT_EQ(s.name, row.name);
    EXPECT_EQ(s.obs_dim, row.obs_dim);
    EXPECT_EQ(s.actions, row.actions);
    EXPECT_EQ(s.max_steps, row.max_steps);
    EXPECT_EQ(s.optimal_return, 1.0);
    if (std::isnan(row.memoryless)) {
      EXPECT_TRUE(std::isnan(s.memoryless_return));
    } else {
      EXPECT_NEAR(s.memoryless_return, row.memoryless, 1e-12);
    }
    EXPECT_EQ(s.has_success, row.success);
  }
}

TEST(MemoryEnvs, OracleReachesTheOptimalReturnInTheSpecifiedSteps) {
  for (const json& config : all_configs()) {
    SCOPED_TRACE(config.dump());
    auto env = make_env(config);
    for (uint64_t seed : {1, 2, 3})
      for (uint64_t ep : {0, 1, 5, 17}) {
        const Episode e = run(*env, seed, ep, kOracle);
        // Up to the rounding of summing rewards of 1/n (1 itself is not a sum of exact terms).
        EXPECT_NEAR(e.ret, env->spec().optimal_return, 1e-9);
        EXPECT_EQ(int64_t(e.steps.size()), oracle_steps(*env));
        ASSERT_FALSE(e.steps.empty());
        EXPECT_TRUE(e.steps.back().terminated);
        EXPECT_FALSE(e.steps.back().truncated);
        if (env->spec().has_success) {
          EXPECT_TRUE(e.steps.back().success);
        }
        // No step of the oracle is ever penalised.
        for (const StepResult& r : e.steps) EXPECT_GE(r.reward, 0.0);
      }
  }
}

TEST(MemoryEnvs, EpisodeLengthIsFixedWhateverThePolicy) {
  for (const json& config : all_configs()) {
    SCOPED_TRACE(config.dump());
    auto env = make_env(config);
    const bool battleship = config["type"] == "popgym_battleship";
    for (uint64_t ep = 0; ep < 4; ++ep) {
      const Episode e = run(*env, 9, ep, kRandom, ep);
      if (battleship) {
        // Random fire rarely sinks everything: the time limit (truncation) or all 12 hits.
        ASSERT_LE(int64_t(e.steps.size()), env->spec().max_steps);
        EXPECT_TRUE(e.steps.back().terminated ||
                    (e.steps.back().truncated && int64_t(e.steps.size()) == env->spec().max_steps));
      } else {
        EXPECT_EQ(int64_t(e.steps.size()), env->spec().max_steps);
        EXPECT_TRUE(e.steps.back().terminated);
        EXPECT_FALSE(e.steps.back().truncated);
      }
      for (size_t i = 0; i + 1 < e.steps.size(); ++i) EXPECT_FALSE(e.steps[i].done()) << i;
      // Every observation entry is written (the runner pre-fills -7).
      for (const auto& o : e.obs)
        for (float v : o) ASSERT_NE(v, -7.f);
    }
  }
}

TEST(MemoryEnvs, DeterministicBySeedAndEpisode) {
  for (const json& config : all_configs()) {
    SCOPED_TRACE(config.dump());
    auto a = make_env(config), b = make_env(config);
    const Episode first = run(*a, 11, 4, kRandom, 99);
    run(*a, 11, 3, kRandom, 5);  // other episodes in between leave nothing behind
    EXPECT_TRUE(same_episode(run(*a, 11, 4, kRandom, 99), first));
    EXPECT_TRUE(same_episode(run(*b, 11, 4, kRandom, 99), first));
    // Other episodes and other seeds are other draws: they differ in what is observed or earned
    // (identical ones would mean the episode key is ignored).
    int64_t differ = 0;
    for (uint64_t k = 0; k < 6; ++k) {
      const Episode o1 = run(*b, 11, 100 + k, kRandom, 99), o2 = run(*b, 12 + k, 4, kRandom, 99);
      differ += !same_episode(o1, first);
      differ += !same_episode(o2, first);
    }
    // A T-Maze or memory chain episode is a cue of a few bits (two of 12 episodes may repeat
    // one); a shuffled deck or a board never repeats.
    const std::string type = config["type"];
    if (type == "tmaze_passive" || type == "memory_len") {
      EXPECT_GE(differ, 1);
    } else {
      EXPECT_EQ(differ, 12);
    }
  }
}

TEST(MemoryEnvs, SaveLoadMidEpisodeContinuesExactly) {
  for (const json& config : all_configs()) {
    SCOPED_TRACE(config.dump());
    auto a = make_env(config);
    const int64_t d = a->spec().obs_dim;
    for (int64_t cut : {int64_t(0), int64_t(1), a->spec().max_steps / 2, a->spec().max_steps - 1}) {
      SCOPED_TRACE(cut);
      std::mt19937_64 g(uint64_t(cut) + 3);
      std::vector<float> oa(static_cast<size_t>(d)), ob(static_cast<size_t>(d));
      a->reset(21, 8, oa.data());
      bool over = false;
      for (int64_t t = 0; t < cut && !over; ++t)
        over = a->step(int64_t(g() % uint64_t(a->spec().actions)), oa.data()).done();
      if (over) continue;  // a battleship game that ended early
      const std::string text = a->save().dump();
      auto b = make_env(config);
      b->load(json::parse(text));
      EXPECT_EQ(b->save(), a->save());
      for (int64_t t = cut; t < a->spec().max_steps; ++t) {
        EXPECT_EQ(a->oracle_action(), b->oracle_action());
        const int64_t act =
            t % 3 == 0 ? a->oracle_action() : int64_t(g() % uint64_t(a->spec().actions));
        const StepResult ra = a->step(act, oa.data()), rb = b->step(act, ob.data());
        ASSERT_EQ(oa, ob) << "step " << t;
        ASSERT_EQ(ra.reward, rb.reward) << "step " << t;
        ASSERT_EQ(ra.terminated, rb.terminated);
        ASSERT_EQ(ra.truncated, rb.truncated);
        ASSERT_EQ(ra.success, rb.success);
        if (ra.done()) break;
      }
      // A state saved after the end stays ended.
      auto c = make_env(config);
      c->load(a->save());
      EXPECT_THROW(c->step(0, ob.data()), Error);
    }
  }
}

TEST(MemoryEnvs, LoadRefusesMalformedStatesAndKeepsItsOwn) {
  for (const json& config : all_configs()) {
    SCOPED_TRACE(config.dump());
    auto env = make_env(config);
    std::vector<float> o(static_cast<size_t>(env->spec().obs_dim));
    env->reset(5, 2, o.data());
    env->step(env->oracle_action(), o.data());
    const json good = env->save();
    ASSERT_TRUE(good.is_object());
    EXPECT_THROW(env->load(json::array()), Error);
    EXPECT_THROW(env->load(json(3)), Error);
    for (const auto& [key, value] : good.items()) {
      SCOPED_TRACE(key);
      json missing = good;
      missing.erase(key);
      EXPECT_NE(error_of([&] { env->load(missing); }).find(key), std::string::npos)
          << error_of([&] { env->load(missing); });
      json wrong = good;
      wrong[key] = "x";
      EXPECT_THROW(env->load(wrong), Error);
      if (value.is_array()) {
        json shorter = good;
        shorter[key].erase(shorter[key].size() - 1);
        EXPECT_THROW(env->load(shorter), Error);
        json bad = good;
        bad[key][0] = -1;
        EXPECT_THROW(env->load(bad), Error);
        bad[key][0] = 1.5;
        EXPECT_THROW(env->load(bad), Error);
        if (key.find("order") != std::string::npos) {
          json twice = good;  // a card dealt twice: not a permutation
          twice[key][0] = twice[key][1];
          EXPECT_NE(error_of([&] { env->load(twice); }).find("permutation"), std::string::npos);
        }
        if (key == "ships") {
          json sunk = good;  // a ship tile missing: 11 of the 12
          for (auto& t : sunk[key])
            if (t == 1) {
              t = 0;
              break;
            }
          EXPECT_THROW(env->load(sunk), Error);
        }
      } else if (value.is_number_integer()) {
        json bad = good;
        bad[key] = 1000000000;
        EXPECT_THROW(env->load(bad), Error);
        bad[key] = -1000000000;
        EXPECT_THROW(env->load(bad), Error);
      } else if (value.is_boolean()) {
        json bad = good;
        bad[key] = !value.get<bool>();  // inconsistent with the time
        EXPECT_THROW(env->load(bad), Error);
      }
    }
    json extra = good;
    extra["typo"] = 1;
    EXPECT_THROW(env->load(extra), Error);
    // After all the refusals the environment still holds the state it had.
    EXPECT_EQ(env->save(), good);
  }
}

TEST(MemoryEnvs, ActionsOutOfRangeAndStepsAfterTheEndAreRefused) {
  for (const json& config : all_configs()) {
    SCOPED_TRACE(config.dump());
    auto env = make_env(config);
    std::vector<float> o(static_cast<size_t>(env->spec().obs_dim));
    EXPECT_THROW(env->step(0, o.data()), Error) << "step before reset";
    // The oracle answers (in range) before any episode and after one ends.
    EXPECT_GE(env->oracle_action(), 0);
    EXPECT_LT(env->oracle_action(), env->spec().actions);
    env->reset(1, 1, o.data());
    const std::string range = fmt::format("0 .. {}", env->spec().actions - 1);
    for (int64_t bad : {int64_t(-1), env->spec().actions, int64_t(1) << 40}) {
      const std::string msg = error_of([&] { env->step(bad, o.data()); });
      EXPECT_NE(msg.find(range), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
    }
    const Episode e = run(*env, 1, 1, kOracle);
    EXPECT_TRUE(e.steps.back().done());
    EXPECT_GE(env->oracle_action(), 0);
    EXPECT_LT(env->oracle_action(), env->spec().actions);
    EXPECT_THROW(env->step(0, o.data()), Error);
  }
}

TEST(MemoryEnvs, BadConfigsAreRefusedByName) {
  const json tm = {{"type", "tmaze_passive"}};
  for (json v : {json(0), json(-3), json(1.5), json("10"), json(2000000)}) {
    json c = tm;
    c["corridor"] = v;
    expect_config_error(c, "corridor");
  }
  json ml = {{"type", "memory_len"}};
  for (json v : {json(0), json(-1), json(2.0), json(true)}) {
    json c = ml;
    c["length"] = v;
    expect_config_error(c, "length");
    c = ml;
    c["bits"] = v;
    expect_config_error(c, "bits");
  }
  ml["bits"] = 1001;
  expect_config_error(ml, "bits");
  for (const char* type : kPopgym) {
    for (json v : {json("extreme"), json("Easy"), json(1), json(nullptr)})
      expect_config_error({{"type", type}, {"difficulty", v}}, "difficulty");
    expect_config_error({{"type", type}, {"decks", 2}}, "decks");
  }
  expect_config_error({{"type", "tmaze_passive"}, {"length", 5}}, "length");
  expect_config_error({{"type", "memory_len"}, {"corridor", 5}}, "corridor");
}

// ---------------------------------------------------------------- the passive T-Maze

TEST(TMazePassive, LayoutRewardsAndTheWalls) {
  auto env = make_env({{"type", "tmaze_passive"}, {"corridor", 3}});
  int64_t seen[2] = {0, 0};
  for (uint64_t ep = 0; ep < 40; ++ep) {
    std::vector<float> o(2);
    env->reset(4, ep, o.data());
    ASSERT_EQ(o[0], 0.f);
    ASSERT_TRUE(o[1] == 1.f || o[1] == -1.f);
    const float goal = o[1];
    seen[goal > 0] += 1;
    // Right along the corridor: [0, 0] with no penalty, [1, 0] at the junction at t = 3.
    for (int t = 1; t <= 3; ++t) {
      const StepResult r = env->step(0, o.data());
      EXPECT_EQ(r.reward, 0.0);
      EXPECT_FALSE(r.done());
      EXPECT_EQ(o, (std::vector<float>{t == 3 ? 1.f : 0.f, 0.f}));
    }
    // Right again is a wall; then the choice at the last step (t = 4).
    const bool choose_right = ep % 2 == 0;
    const int64_t up_or_down = (goal > 0) == choose_right ? 1 : 3;
    const StepResult r = env->step(up_or_down, o.data());
    EXPECT_TRUE(r.terminated);
    EXPECT_EQ(r.success, choose_right);
    EXPECT_EQ(r.reward, choose_right ? 1.0 : 0.0);
    EXPECT_EQ(o, (std::vector<float>{1.f, up_or_down == 1 ? 1.f : -1.f}));
  }
  EXPECT_GT(seen[0], 5);
  EXPECT_GT(seen[1], 5);

  // Falling behind costs -1/L a step (left at the start is a wall; the cue is not shown again).
  std::vector<float> o(2);
  env->reset(4, 0, o.data());
  StepResult r = env->step(2, o.data());
  EXPECT_DOUBLE_EQ(r.reward, -1.0 / 3.0);
  EXPECT_EQ(o, (std::vector<float>{0.f, 0.f}));
  r = env->step(0, o.data());  // x = 1 < t = 2
  EXPECT_DOUBLE_EQ(r.reward, -1.0 / 3.0);
  r = env->step(0, o.data());  // x = 2 < t = 3
  EXPECT_DOUBLE_EQ(r.reward, -1.0 / 3.0);
  r = env->step(0, o.data());  // the last step: at x = 3 but y = 0, no goal
  EXPECT_TRUE(r.terminated);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.reward, 0.0);
  EXPECT_EQ(o, (std::vector<float>{1.f, 0.f}));
  // Always left: -1/L at each of the L steps, 0 at the end.
  EXPECT_NEAR(
      run(*env, 4, 1, [](const Env&, const auto&, std::mt19937_64&) { return int64_t(2); }).ret,
      -1.0, 1e-12);
}

TEST(TMazePassive, MemorylessPolicyScoresAHalf) {
  for (int64_t corridor : {2, 20}) {
    auto env = make_env({{"type", "tmaze_passive"}, {"corridor", corridor}});
    // Walk right; at the junction always up (it cannot know the goal any more).
    const Policy p = [](const Env&, const std::vector<std::vector<float>>& h, std::mt19937_64&) {
      return h.back()[0] == 1.f ? int64_t(1) : int64_t(0);
    };
    const Mean m = mean_return(*env, p, 2000, 3);
    expect_mean(m, env->spec().memoryless_return);
    EXPECT_LT(m.mean, 0.6);
    // Remembering the first observation solves it (the check above can fail).
    const Policy memory = [](const Env&, const std::vector<std::vector<float>>& h,
                             std::mt19937_64&) {
      return h.back()[0] == 1.f ? (h[0][1] > 0 ? int64_t(1) : int64_t(3)) : int64_t(0);
    };
    EXPECT_EQ(mean_return(*env, memory, 200, 3).mean, 1.0);
  }
}

// ---------------------------------------------------------------- bsuite memory chain

TEST(MemoryLen, ObservationsFollowBsuiteStepByStep) {
  auto env = make_env({{"type", "memory_len"}, {"length", 3}, {"bits", 2}});
  int64_t queries[2] = {0, 0};
  for (uint64_t ep = 0; ep < 60; ++ep) {
    std::vector<float> o(4), ctx(4);
    env->reset(2, ep, o.data());
    EXPECT_EQ(o[0], 1.f);
    EXPECT_EQ(o[1], 0.f);
    for (int b = 0; b < 2; ++b) ASSERT_TRUE(o[2 + b] == 1.f || o[2 + b] == -1.f);
    ctx = o;
    // Step 1 returns the observation of time 0 again (bsuite's step observes first).
    StepResult r = env->step(1, o.data());
    EXPECT_EQ(o, ctx);
    EXPECT_EQ(r.reward, 0.0);
    EXPECT_FALSE(r.done());
    r = env->step(0, o.data());
    EXPECT_EQ(o, (std::vector<float>{float(1.0 - 1.0 / 3.0), 0.f, 0.f, 0.f}));
    EXPECT_EQ(r.reward, 0.0);
    r = env->step(1, o.data());
    EXPECT_EQ(o[0], float(1.0 - 2.0 / 3.0));
    ASSERT_TRUE(o[1] == 0.f || o[1] == 1.f);
    EXPECT_EQ(o[2], 0.f);
    EXPECT_EQ(o[3], 0.f);
    EXPECT_EQ(r.reward, 0.0);
    EXPECT_FALSE(r.done());
    const int64_t q = int64_t(o[1]);
    queries[q] += 1;
    const int64_t bit = ctx[size_t(2 + q)] > 0 ? 1 : 0;
    EXPECT_EQ(env->oracle_action(), bit);
    const bool right = ep % 3 != 0;
    r = env->step(right ? bit : 1 - bit, o.data());
    EXPECT_TRUE(r.terminated);
    EXPECT_EQ(r.success, right);
    EXPECT_EQ(r.reward, right ? 1.0 : -1.0);
    EXPECT_EQ(o, (std::vector<float>{0.f, 0.f, 0.f, 0.f}));
  }
  EXPECT_GT(queries[0], 10);
  EXPECT_GT(queries[1], 10);
}

TEST(MemoryLen, MemorylessPolicyScoresItsClosedForm) {
  // Answer from the current observation's context (visible at the decision only when length 1).
  const Policy p = [](const Env&, const std::vector<std::vector<float>>& h, std::mt19937_64&) {
    return h.back()[2] > 0 ? int64_t(1) : int64_t(0);
  };
  for (int64_t length : {1, 2, 10}) {
    auto env = make_env({{"type", "memory_len"}, {"length", length}});
    const Mean m = mean_return(*env, p, 3000, 8);
    expect_mean(m, env->spec().memoryless_return);
    if (length > 1) {
      EXPECT_LT(m.mean, 0.1);
    }
    // Remembering the reset observation answers every episode.
    const Policy memory = [](const Env&, const std::vector<std::vector<float>>& h,
                             std::mt19937_64&) { return h[0][2] > 0 ? int64_t(1) : int64_t(0); };
    EXPECT_EQ(mean_return(*env, memory, 200, 8).mean, 1.0);
  }
}

// ---------------------------------------------------------------- POPGym diagnostics

namespace {

std::unique_ptr<Env> popgym(const char* type, int level) {
  return make_env({{"type", type}, {"difficulty", kLevels[level]}});
}

// Each observation's block [from, from + n) is one-hot; returns the hot index.
int64_t one_hot(const std::vector<float>& o, size_t from, size_t n) {
  int64_t hot = -1, ones = 0;
  for (size_t i = from; i < from + n; ++i) {
    EXPECT_TRUE(o[i] == 0.f || o[i] == 1.f) << o[i];
    if (o[i] == 1.f) hot = int64_t(i - from), ++ones;
  }
  EXPECT_EQ(ones, 1);
  return hot;
}

}  // namespace

TEST(PopgymRepeatFirst, RewardsAndAFullDeck) {
  const int64_t decks[3] = {1, 8, 16};
  for (int level = 0; level < 3; ++level) {
    SCOPED_TRACE(level);
    auto env = popgym("popgym_repeat_first", level);
    const int64_t n = 52 * decks[level];
    // Name the first suit at even steps and another at odd ones (from the history, not the
    // oracle).
    const Policy p = [](const Env&, const std::vector<std::vector<float>>& h, std::mt19937_64&) {
      const int64_t first = argmax(h[0], 0, 4);
      return h.size() % 2 == 1 ? first : (first + 1) % 4;
    };
    const Episode e = run(*env, 3, 1, p);
    ASSERT_EQ(int64_t(e.steps.size()), n - 1);
    for (size_t i = 0; i < e.steps.size(); ++i)
      EXPECT_DOUBLE_EQ(e.steps[i].reward, (i % 2 == 0 ? 1.0 : -1.0) / double(n - 1)) << i;
    // The n observations are the n cards of the deck: n/4 of each suit.
    std::vector<int64_t> suits(4, 0);
    for (const auto& o : e.obs) suits[size_t(one_hot(o, 0, 4))] += 1;
    EXPECT_EQ(suits, std::vector<int64_t>(4, n / 4));
    // The history policy that always names the first suit is optimal.
    const Policy memory = [](const Env&, const std::vector<std::vector<float>>& h,
                             std::mt19937_64&) { return argmax(h[0], 0, 4); };
    EXPECT_NEAR(run(*env, 3, 2, memory).ret, 1.0, 1e-9);
    // Memoryless: name the suit on show.
    const Policy blind = [](const Env&, const std::vector<std::vector<float>>& h,
                            std::mt19937_64&) { return argmax(h.back(), 0, 4); };
    const Mean m = mean_return(*env, blind, level == 0 ? 2000 : 300, 6);
    expect_mean(m, env->spec().memoryless_return);
    EXPECT_LT(m.mean, -0.4);
  }
}

TEST(PopgymRepeatPrevious, RewardsStartAtKAndNameTheCardKMinusOneBack) {
  const int64_t decks[3] = {1, 2, 3}, ks[3] = {4, 32, 64};
  for (int level = 0; level < 3; ++level) {
    SCOPED_TRACE(level);
    auto env = popgym("popgym_repeat_previous", level);
    const int64_t n = 52 * decks[level], k = ks[level];
    // At step j (h holds j observations) the card asked about is observation j - k.
    const Policy memory = [k](const Env&, const std::vector<std::vector<float>>& h,
                              std::mt19937_64&) {
      const int64_t j = int64_t(h.size());
      return j >= k ? argmax(h[size_t(j - k)], 0, 4) : int64_t(0);
    };
    for (uint64_t ep = 0; ep < 3; ++ep) {
      const Episode e = run(*env, 5, ep, memory);
      ASSERT_EQ(int64_t(e.steps.size()), n - 1);
      EXPECT_NEAR(e.ret, 1.0, 1e-9);
      for (int64_t j = 1; j <= n - 1; ++j)
        EXPECT_DOUBLE_EQ(e.steps[size_t(j - 1)].reward, j < k ? 0.0 : 1.0 / double(n - k)) << j;
      std::vector<int64_t> suits(4, 0);
      for (const auto& o : e.obs) suits[size_t(one_hot(o, 0, 4))] += 1;
      EXPECT_EQ(suits, std::vector<int64_t>(4, n / 4));
    }
    // One step off (the card k steps back) is wrong about as often as a memoryless guess.
    const Policy off = [k](const Env&, const std::vector<std::vector<float>>& h, std::mt19937_64&) {
      const int64_t j = int64_t(h.size());
      return j > k ? argmax(h[size_t(j - k - 1)], 0, 4) : int64_t(0);
    };
    EXPECT_LT(run(*env, 5, 0, off).ret, 0.2);
    // Memoryless: name a suit other than the one on show.
    const Policy blind = [](const Env&, const std::vector<std::vector<float>>& h,
                            std::mt19937_64&) { return (argmax(h.back(), 0, 4) + 1) % 4; };
    const Mean m = mean_return(*env, blind, 1000, 6);
    expect_mean(m, env->spec().memoryless_return);
    EXPECT_LT(m.mean, -0.4);
  }
}

TEST(PopgymAutoencode, WatchThenRecallInReverse) {
  const int64_t decks[3] = {1, 2, 3};
  for (int level = 0; level < 3; ++level) {
    SCOPED_TRACE(level);
    auto env = popgym("popgym_autoencode", level);
    const int64_t n = 52 * decks[level];
    // Recall from the history: play step i (0-based) names the suit of card n-1-i, which was
    // observation n-1-i.
    const Policy memory = [n](const Env&, const std::vector<std::vector<float>>& h,
                              std::mt19937_64&) {
      const int64_t t = int64_t(h.size()) - 1;  // steps taken
      if (t < n - 1) return int64_t(0);
      return argmax(h[size_t(n - 1 - (t - (n - 1)))], 1, 4);
    };
    const Episode e = run(*env, 7, 2, memory);
    ASSERT_EQ(int64_t(e.steps.size()), 2 * n - 1);
    EXPECT_NEAR(e.ret, 1.0, 1e-9);
    std::vector<int64_t> suits(4, 0);
    for (int64_t t = 0; t <= 2 * n - 1; ++t) {
      const auto& o = e.obs[size_t(t)];
      EXPECT_EQ(o[0], t < n - 1 ? 1.f : 0.f) << t;  // the mode flag
      const int64_t s = one_hot(o, 1, 4);
      if (t < n) suits[size_t(s)] += 1;
      if (t > n - 1) {
        EXPECT_EQ(s, 0) << "play observations show suit 0, t " << t;
      }
      if (t >= 1) {
        EXPECT_DOUBLE_EQ(e.steps[size_t(t - 1)].reward, t < n ? 0.0 : 1.0 / double(n)) << t;
      }
    }
    EXPECT_EQ(suits, std::vector<int64_t>(4, n / 4));
    // Answering in dealing order instead is far from optimal.
    const Policy forward = [n](const Env&, const std::vector<std::vector<float>>& h,
                               std::mt19937_64&) {
      const int64_t t = int64_t(h.size()) - 1;
      return t < n - 1 ? int64_t(0) : argmax(h[size_t(t - (n - 1))], 1, 4);
    };
    EXPECT_LT(run(*env, 7, 2, forward).ret, 0.3);
    // Memoryless: name the suit on show.
    const Policy blind = [](const Env&, const std::vector<std::vector<float>>& h,
                            std::mt19937_64&) { return argmax(h.back(), 1, 4); };
    const Mean m = mean_return(*env, blind, 1000, 6);
    expect_mean(m, env->spec().memoryless_return);
    EXPECT_LT(m.mean, -0.4);
  }
}

TEST(PopgymCountRecall, CountsFromTheHistoryAreRight) {
  const int64_t decks[3] = {1, 2, 4}, values[3] = {2, 4, 13};
  for (int level = 0; level < 3; ++level) {
    SCOPED_TRACE(level);
    auto env = popgym("popgym_count_recall", level);
    const int64_t n = 52 * decks[level], v = values[level];
    // Count the value cards seen so far with the query's field value.
    const Policy memory = [v](const Env&, const std::vector<std::vector<float>>& h,
                              std::mt19937_64&) {
      const int64_t q = argmax(h.back(), size_t(v), size_t(v));
      int64_t c = 0;
      for (const auto& o : h) c += argmax(o, 0, size_t(v)) == q;
      return c;
    };
    for (uint64_t ep = 0; ep < 3; ++ep) {
      const Episode e = run(*env, 9, ep, memory);
      ASSERT_EQ(int64_t(e.steps.size()), n - 1);
      EXPECT_NEAR(e.ret, 1.0, 1e-9);
      for (const StepResult& r : e.steps) EXPECT_DOUBLE_EQ(r.reward, 1.0 / double(n - 1));
      // Both decks are dealt whole: n/v cards of each field value in each.
      std::vector<int64_t> dealt(size_t(v), 0), asked(size_t(v), 0);
      for (const auto& o : e.obs) {
        dealt[size_t(one_hot(o, 0, size_t(v)))] += 1;
        asked[size_t(one_hot(o, size_t(v), size_t(v)))] += 1;
      }
      EXPECT_EQ(dealt, std::vector<int64_t>(size_t(v), n / v));
      EXPECT_EQ(asked, std::vector<int64_t>(size_t(v), n / v));
    }
    // Any other count is wrong at every step: the return is -1.
    const Policy off = [memory](const Env& env, const std::vector<std::vector<float>>& h,
                                std::mt19937_64& g) {
      const int64_t c = memory(env, h, g);
      return c == 0 ? int64_t(1) : c - 1;
    };
    EXPECT_NEAR(run(*env, 9, 0, off).ret, -1.0, 1e-9);
    // Random answers score far below the optimum.
    const Mean m = mean_return(*env, kRandom, 200, 6);
    EXPECT_LT(m.mean, -0.5);
  }
}

// ---------------------------------------------------------------- POPGym Battleship

TEST(PopgymBattleship, SweepHitsAndMisses) {
  const int64_t boards[3] = {8, 10, 12};
  for (int level = 0; level < 3; ++level) {
    SCOPED_TRACE(level);
    auto env = popgym("popgym_battleship", level);
    const int64_t b = boards[level], tiles = b * b;
    // Fire at every tile in turn (the tile just fired at is in the observation: this policy
    // needs no memory).
    const Policy sweep = [b](const Env&, const std::vector<std::vector<float>>& h,
                             std::mt19937_64&) {
      const auto& o = h.back();
      if (std::all_of(o.begin(), o.end(), [](float x) { return x == 0.f; })) return int64_t(0);
      return argmax(o, 1, size_t(b)) * b + argmax(o, 1 + size_t(b), size_t(b)) + 1;
    };
    for (uint64_t ep = 0; ep < 5; ++ep) {
      const Episode e = run(*env, 13, ep, sweep);
      EXPECT_EQ(e.obs[0], std::vector<float>(size_t(1 + 2 * b), 0.f));
      int64_t hits = 0;
      for (size_t i = 0; i < e.steps.size(); ++i) {
        const auto& o = e.obs[i + 1];
        EXPECT_EQ(e.actions[i], int64_t(i));
        EXPECT_EQ(one_hot(o, 1, size_t(b)), int64_t(i) / b);
        EXPECT_EQ(one_hot(o, 1 + size_t(b), size_t(b)), int64_t(i) % b);
        const bool hit = o[0] == 1.f;
        hits += hit;
        EXPECT_DOUBLE_EQ(e.steps[i].reward, hit ? 1.0 / 12 : -1.0 / double(tiles - 12));
      }
      EXPECT_EQ(hits, 12);
      EXPECT_TRUE(e.steps.back().terminated && e.steps.back().success);
      const int64_t misses = int64_t(e.steps.size()) - 12;
      EXPECT_NEAR(e.ret, 1.0 - double(misses) / double(tiles - 12), 1e-9);
      EXPECT_GE(e.ret, -1e-12);
    }
    // The oracle's 12 tiles are distinct and each is a hit; firing at a hit tile again misses.
    std::vector<float> o(static_cast<size_t>(1 + 2 * b));
    env->reset(13, 0, o.data());
    std::set<int64_t> ship;
    for (int i = 0; i < 12; ++i) {
      const int64_t a = env->oracle_action();
      ship.insert(a);
      const StepResult r = env->step(a, o.data());
      EXPECT_EQ(o[0], 1.f);
      if (i == 0) {
        const StepResult again = env->step(a, o.data());
        EXPECT_EQ(o[0], 0.f);
        EXPECT_DOUBLE_EQ(again.reward, -1.0 / double(tiles - 12));
      }
      EXPECT_EQ(r.terminated, i == 11);
    }
    EXPECT_EQ(ship.size(), 12u);
    // Random fire scores clearly below the optimum.
    const Mean m = mean_return(*env, kRandom, 200, 6);
    EXPECT_LT(m.mean, 0.0);
  }
}

TEST(PopgymBattleship, ShipsAreLinesOfTwoThreeThreeFour) {
  // Over many boards: 12 ship tiles, every tile of the board sometimes used, and the tiles
  // split into straight segments whose lengths can be 2, 3, 3, 4 (checked where no two ships
  // touch: then the connected pieces are the ships themselves).
  auto env = popgym("popgym_battleship", 0);
  const int64_t b = 8;
  std::vector<int64_t> used(64, 0);
  int64_t separate = 0;
  for (uint64_t ep = 0; ep < 400; ++ep) {
    std::vector<float> o(17);
    env->reset(17, ep, o.data());
    std::vector<int64_t> tiles;
    for (int i = 0; i < 12; ++i) {
      const int64_t a = env->oracle_action();
      tiles.push_back(a);
      env->step(a, o.data());
    }
    std::set<int64_t> set(tiles.begin(), tiles.end());
    ASSERT_EQ(set.size(), 12u);
    for (int64_t t : tiles) used[size_t(t)] += 1;
    // Connected components (4-neighbourhood).
    std::set<int64_t> left = set;
    std::vector<int64_t> sizes;
    bool straight = true;
    while (!left.empty()) {
      std::vector<int64_t> stack = {*left.begin()}, comp;
      left.erase(left.begin());
      while (!stack.empty()) {
        const int64_t t = stack.back();
        stack.pop_back();
        comp.push_back(t);
        for (int64_t nb : {t - b, t + b, t % b ? t - 1 : -1, (t + 1) % b ? t + 1 : -1})
          if (nb >= 0 && left.count(nb)) left.erase(nb), stack.push_back(nb);
      }
      std::set<int64_t> rows, cols;
      for (int64_t t : comp) rows.insert(t / b), cols.insert(t % b);
      straight = straight && (rows.size() == 1 || cols.size() == 1);
      sizes.push_back(int64_t(comp.size()));
    }
    if (sizes.size() == 4) {
      ++separate;
      std::sort(sizes.begin(), sizes.end());
      EXPECT_EQ(sizes, (std::vector<int64_t>{2, 3, 3, 4}));
      EXPECT_TRUE(straight);
    }
  }
  EXPECT_GT(separate, 50);
  for (int64_t t = 0; t < 64; ++t) EXPECT_GT(used[size_t(t)], 0) << t;
}
