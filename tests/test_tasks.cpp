// The classification and forecasting tasks end to end through the real trainer, on data made in
// the test and prepared like the real data sets: a learnable labelled set (chance 25%) and a
// sine with noise (the naive last-value forecast is far off, a seasonal pattern is learnable).
// Each bound is one a broken model cannot reach. Also: the shuffled batches' order and resume.
#include <gtest/gtest.h>

#include "rill/tasks/classification.h"
#include "rill/tasks/forecasting.h"
#include "rill/tasks/shuffled_batches.h"
#include "rill/train/trainer.h"
#include "tests/support/datasets.h"
#include "tests/support/runs.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

const json kLinearAttention = {
    {"type", "linear_attention"}, {"heads", 2}, {"chunk", 8}, {"local", "conv3"}};
// Aaren as a drop-in for the attention of the same block (the tasks take any mixer).
const json kAaren = {{"type", "aaren"}, {"heads", 2}, {"local", "conv3"}};

json model_config(const json& mixer = kLinearAttention) {
  return {{"d_model", 32}, {"n_layers", 2}, {"mlp_hidden", 64}, {"mixers", {mixer}}};
}

TrainConfig run_config(const TempDir& dir, const json& task, int64_t steps,
                       const json& mixer = kLinearAttention) {
  TrainConfig c;
  c.task = task;
  c.model = model_config(mixer);
  c.data_dir = dir.str();
  c.out_dir = dir / "run";
  c.batch = 32, c.steps = steps, c.warmup = 10, c.lr = 3e-3, c.min_lr = 3e-4;
  c.eval_every = steps, c.eval_batches = 0, c.checkpoint_every = steps;
  return c;
}

}  // namespace

TEST(Tasks, ClassificationLearnsTheCue) {
  TempDir dir;
  prepare_cue_set(dir.str());
  for (const json& mixer : {kLinearAttention, kAaren}) {
    TrainConfig cfg = run_config(dir, {{"type", "classification"}, {"dataset", "cue"}}, 150, mixer);
    TrainResult r = train(cfg, false);
    EXPECT_EQ(r.valid.primary, "accuracy");
    EXPECT_EQ(r.unit, "sequences");
    // Chance is 0.25; the cue is unambiguous, so a working model gets nearly all of them.
    EXPECT_GT(r.valid.headline(), 0.9) << mixer.dump() << " valid loss " << r.valid.loss;
    RunParts p = build_run(cfg);
    EXPECT_EQ(p.model->io().in_features, 4);
    EXPECT_EQ(p.model->io().out_dim, 4);
    EXPECT_EQ(p.task->evaluate(*p.model, "test", 0).value("examples"), 120);
  }
}

TEST(Tasks, ForecastingBeatsTheNaiveForecasts) {
  TempDir dir;
  prepare_sine(dir.str());
  for (const json& mixer : {kLinearAttention, kAaren}) {
    TrainConfig cfg = run_config(
        dir, {{"type", "forecasting"}, {"dataset", "sine"}, {"input_len", 48}}, 300, mixer);
    TrainResult r = train(cfg, false);
    const Metrics& m = r.valid;
    EXPECT_EQ(m.primary, "mse");
    // Six steps ahead, repeating the last value is far off (about 1.0 on the standardised
    // scale); the season is learnable down to the noise (about 0.02).
    EXPECT_GT(m.value("last_value_mse"), 0.5);
    EXPECT_LT(m.value("mse"), m.value("last_value_mse") / 4) << mixer.dump() << m.to_json().dump();
    EXPECT_LT(m.value("mae"), 0.35) << mixer.dump() << m.to_json().dump();
    RunParts p = build_run(cfg);
    EXPECT_EQ(p.model->io().out_dim, 6);  // horizon x features
  }
}

TEST(Tasks, ShuffledBatchesCoverEachEpochAndResume) {
  ShuffledBatches a(10, 3, 7);  // 3 batches an epoch, one example skipped
  std::vector<int64_t> epoch;
  for (int b = 0; b < 3; ++b)
    for (int64_t i : a.next().to_vector<int64_t>()) epoch.push_back(i);
  std::vector<int64_t> sorted = epoch;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "a repeat in an epoch";
  EXPECT_EQ(sorted.size(), 9u);
  std::vector<int64_t> next = a.next().to_vector<int64_t>();
  ShuffledBatches b(10, 3, 7);
  b.set_position(3);
  EXPECT_EQ(b.next().to_vector<int64_t>(), next);  // resumed by position alone
  ShuffledBatches c(10, 3, 8);
  EXPECT_NE(c.next().to_vector<int64_t>(), std::vector<int64_t>(epoch.begin(), epoch.begin() + 3));
  expect_error([] { ShuffledBatches(5, 8, 1); }, {"[task]", "5 training examples", "batch of 8"});
}

TEST(Tasks, ClearErrors) {
  TempDir dir;
  prepare_sine(dir.str());
  expect_error(
      [&] {
        make_task({{"type", "translation"}}, {dir.str(), 4, 1});
      },
      {"[config]", "unknown task type \"translation\"", "classification", "forecasting",
       "language_modeling"});
  expect_error(
      [&] {
        make_task({{"type", "forecasting"}, {"dataset", "sine"}, {"normalize", "global"}},
                  {dir.str(), 4, 1});
      },
      {"[config]", "\"normalize\" is \"global\""});
  expect_error(
      [&] {
        make_task({{"type", "forecasting"}, {"dataset", "sine"}, {"input_len", 2.5}},
                  {dir.str(), 4, 1});
      },
      {"[config]", "\"input_len\" must be an integer"});
  expect_error(
      [&] {
        make_task({{"type", "classification"}, {"dataset", "sine"}}, {dir.str(), 4, 1});
      },
      {"[data]", "sine"});
}
