// The generated T-Maze (data/tmaze.h, tasks/tmaze.h): the episodes are a pure function of the
// seed, the cue is shown at t = 0 only and is the label, the observation follows AGaLiTe's
// tmazev2 layout, nothing after t = 0 tells the label (a classifier that cannot see t = 0 scores
// chance, while the same classifier with t = 0 scores 100%), the three splits are different
// streams, bad configs are refused by name, a small model learns a short corridor through the
// real trainer, every config in configs/tmaze builds, and the table (rill tmaze) fills its cells.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "rill/data/tmaze.h"
#include "rill/tasks/tmaze.h"
#include "rill/train/tmaze_table.h"
#include "rill/train/trainer.h"
#include "tests/support/files.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

// x[i, t, f] of a generated set.
float at(const data::LabelledSplit& s, int64_t i, int64_t t, int64_t f) {
  const int64_t n = s.x.size(1);
  return s.x.data<float>()[(i * n + t) * data::kTMazeFeatures + f];
}

bool same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

// Naive Bayes over binary features: per (step, feature) the frequency of 1 in each class
// (Laplace smoothed), trained on `train` and scored on `test`, over steps >= first_step only.
// Independent features are exactly what the generator promises for t >= 1, so it is a fair
// reader of any label information the steps it sees carry.
double naive_bayes_accuracy(const data::LabelledSplit& train, const data::LabelledSplit& test,
                            int64_t first_step) {
  const int64_t n = train.x.size(1), f = data::kTMazeFeatures;
  std::vector<double> ones[2], count(2, 0);
  ones[0].assign(size_t(n * f), 0), ones[1].assign(size_t(n * f), 0);
  const int64_t* y = train.y.data<int64_t>();
  for (int64_t i = 0; i < train.size(); ++i) {
    count[size_t(y[i])] += 1;
    for (int64_t k = first_step * f; k < n * f; ++k)
      ones[y[i]][size_t(k)] += at(train, i, k / f, k % f);
  }
  int64_t correct = 0;
  const int64_t* ty = test.y.data<int64_t>();
  for (int64_t i = 0; i < test.size(); ++i) {
    double score[2];
    for (int c = 0; c < 2; ++c) {
      score[c] = std::log(count[c]);
      for (int64_t k = first_step * f; k < n * f; ++k) {
        const double p1 = (ones[c][size_t(k)] + 1) / (count[c] + 2);
        score[c] += std::log(at(test, i, k / f, k % f) > 0.5f ? p1 : 1 - p1);
      }
    }
    correct += int64_t(score[1] > score[0]) == ty[i];
  }
  return double(correct) / double(test.size());
}

}  // namespace

TEST(TMaze, DeterministicBySeedAndCounterBased) {
  const uint64_t key = data::tmaze_stream_key(7, "train");
  const data::LabelledSplit a = data::tmaze_episodes(30, key, 0, 64);
  const data::LabelledSplit b = data::tmaze_episodes(30, key, 0, 64);
  EXPECT_TRUE(same(a.x, b.x));
  EXPECT_TRUE(same(a.y, b.y));
  // Episode e is the same whatever range it is drawn in (training batches rely on it).
  const data::LabelledSplit tail = data::tmaze_episodes(30, key, 40, 24);
  EXPECT_TRUE(same(tail.x, a.x.narrow(0, 40, 24).contiguous()));
  EXPECT_TRUE(same(tail.y, a.y.narrow(0, 40, 24).contiguous()));
  // Another data seed is another stream.
  const data::LabelledSplit c = data::tmaze_episodes(30, data::tmaze_stream_key(8, "train"), 0, 64);
  EXPECT_FALSE(same(a.x, c.x));
}

TEST(TMaze, ShapesLayoutAndTheCueOnlyAtTheStart) {
  for (int64_t corridor : {10, 300, 1000}) {
    const int64_t n_ep = corridor == 1000 ? 40 : 400;
    const data::LabelledSplit s =
        data::tmaze_episodes(corridor, data::tmaze_stream_key(1, "valid"), 0, n_ep);
    ASSERT_EQ(s.x.shape(), Shape({n_ep, corridor, 16}));
    ASSERT_EQ(s.y.shape(), Shape({n_ep}));
    EXPECT_EQ(s.x.dtype(), DType::f32);
    int64_t up = 0, distractor_ones = 0, distractor_bits = 0;
    for (int64_t i = 0; i < n_ep; ++i) {
      const int64_t label = s.y.data<int64_t>()[i];
      ASSERT_TRUE(label == 0 || label == 1);
      up += label == 0;
      // The label is the cue: up [0, 1] is class 0, down [1, 0] class 1.
      EXPECT_EQ(at(s, i, 0, 0), label == 1 ? 1.f : 0.f);
      EXPECT_EQ(at(s, i, 0, 1), label == 0 ? 1.f : 0.f);
      for (int64_t f = 10; f < 16; ++f) EXPECT_EQ(at(s, i, 0, f), 0.f) << "distractor at t = 0";
      for (int64_t t = 0; t < corridor; ++t) {
        if (t > 0) {
          ASSERT_EQ(at(s, i, t, 0), 0.f) << "cue at t = " << t;
          ASSERT_EQ(at(s, i, t, 1), 0.f) << "cue at t = " << t;
          for (int64_t f = 10; f < 16; ++f) {
            const float v = at(s, i, t, f);
            ASSERT_TRUE(v == 0.f || v == 1.f);
            distractor_ones += v == 1.f, ++distractor_bits;
          }
        }
        // Gray code of the position, low 8 bits, most significant first.
        const int64_t gray = (t ^ (t >> 1)) & 255;
        for (int j = 0; j < 8; ++j)
          ASSERT_EQ(at(s, i, t, 2 + j), float((gray >> (7 - j)) & 1)) << "t " << t << " bit " << j;
      }
    }
    // Fair coins: both cues and the distractor bits near half (several sigma of slack).
    EXPECT_NEAR(double(up) / double(n_ep), 0.5, corridor == 1000 ? 0.25 : 0.1);
    EXPECT_NEAR(double(distractor_ones) / double(distractor_bits), 0.5, 0.02);
  }
}

TEST(TMaze, NothingAfterTheStartTellsTheLabel) {
  const data::LabelledSplit train =
      data::tmaze_episodes(10, data::tmaze_stream_key(3, "train"), 0, 4000);
  const data::LabelledSplit test =
      data::tmaze_episodes(10, data::tmaze_stream_key(3, "test"), 0, 2000);
  // Blind to t = 0: chance (0.5; sigma over 2,000 episodes is 0.011).
  const double blind = naive_bayes_accuracy(train, test, 1);
  EXPECT_NEAR(blind, 0.5, 0.05);
  // The same reader that sees t = 0 decides every episode: the check above can fail.
  EXPECT_EQ(naive_bayes_accuracy(train, test, 0), 1.0);
}

TEST(TMaze, SplitsAreSeparateStreams) {
  const uint64_t tr = data::tmaze_stream_key(1, "train"), va = data::tmaze_stream_key(1, "valid"),
                 te = data::tmaze_stream_key(1, "test");
  EXPECT_NE(tr, va);
  EXPECT_NE(tr, te);
  EXPECT_NE(va, te);
  const data::LabelledSplit a = data::tmaze_episodes(20, tr, 0, 200);
  const data::LabelledSplit b = data::tmaze_episodes(20, te, 0, 200);
  // No test episode repeats a training one (6 x 19 random bits each: a repeat is a bug).
  for (int64_t i = 0; i < 200; ++i)
    for (int64_t j = 0; j < 200; ++j)
      ASSERT_FALSE(same(a.x.select(0, i).contiguous(), b.x.select(0, j).contiguous()))
          << "train " << i << " = test " << j;
  expect_error([] { data::tmaze_stream_key(1, "dev"); }, {"[data]", "\"dev\"", "train"});
}

TEST(TMaze, TaskBatchesResumeByPosition) {
  auto task = make_task({{"type", "tmaze"}, {"corridor", 12}}, {"unused", 8, 1});
  EXPECT_EQ(task->type(), "tmaze");
  EXPECT_EQ(task->model_io().in_features, 16);
  EXPECT_EQ(task->model_io().out_dim, 2);
  EXPECT_EQ(task->model_io().vocab, 0);
  task->next_batch();
  task->next_batch();
  TaskBatch third = task->next_batch();
  EXPECT_EQ(third.inputs.shape(), Shape({8, 12, 16}));
  EXPECT_EQ(third.targets.shape(), Shape({8}));
  // Fresh episodes each batch, and batch p is a function of p alone.
  task->set_position(2);
  EXPECT_TRUE(same(task->next_batch().inputs, third.inputs));
  task->set_position(1);
  EXPECT_FALSE(same(task->next_batch().inputs, third.inputs));
  // The classification spelling builds the same task.
  auto via = make_task({{"type", "classification"}, {"dataset", "tmaze"}, {"corridor", 12}},
                       {"unused", 8, 1});
  EXPECT_EQ(via->type(), "tmaze");
  via->set_position(2);
  EXPECT_TRUE(same(via->next_batch().inputs, third.inputs));
}

TEST(TMaze, BadConfigsAreRefused) {
  const TaskContext ctx{"unused", 4, 1};
  for (int64_t bad : {0, 9, 1001, -5})
    expect_error(
        [&] {
          make_task({{"type", "tmaze"}, {"corridor", bad}}, ctx);
        },
        {"[config]", "\"corridor\" is " + std::to_string(bad), "between 10 and 1000"});
  expect_error(
      [&] {
        make_task({{"type", "classification"}, {"dataset", "tmaze"}, {"corridor", 5000}}, ctx);
      },
      {"[config]", "\"corridor\" is 5000"});
  expect_error(
      [&] {
        make_task({{"type", "tmaze"}, {"corridor", 12.5}}, ctx);
      },
      {"[config]", "\"corridor\" must be an integer"});
  expect_error(
      [&] {
        make_task({{"type", "tmaze"}, {"corridors", 12}}, ctx);
      },
      {"[config]", "unknown key \"corridors\""});
  expect_error(
      [&] {
        make_task({{"type", "tmaze"}, {"test_episodes", 0}}, ctx);
      },
      {"[config]", "\"test_episodes\" is 0"});
  // The ends of the range are accepted.
  make_task({{"type", "tmaze"}, {"corridor", 10}}, ctx);
  make_task({{"type", "tmaze"}, {"corridor", 1000}}, ctx);
}

TEST(TMaze, ASmallModelLearnsAShortCorridor) {
  TempDir dir;
  TrainConfig c;
  c.task = {{"type", "tmaze"}, {"corridor", 10}, {"valid_episodes", 128}, {"test_episodes", 256}};
  c.model = {{"d_model", 32},
             {"n_layers", 1},
             {"mlp_hidden", 64},
             {"blocks", "gru_gated"},
             {"mixers", {{{"type", "linear_attention"}, {"heads", 2}, {"chunk", 8}}}}};
  c.data_dir = dir.str();
  c.out_dir = dir / "run";
  c.batch = 32, c.steps = 150, c.warmup = 10, c.lr = 3e-3, c.min_lr = 3e-4;
  c.eval_every = 150, c.eval_batches = 0, c.checkpoint_every = 150;
  TrainResult r = train(c, false);
  RunParts p = build_run(c);
  const Metrics untrained = p.task->evaluate(*p.model, "test", 0);
  EXPECT_EQ(untrained.value("examples"), 256);
  // Chance is 0.5: an untrained model sits near it, a working one decides nearly every episode.
  EXPECT_LT(untrained.headline(), 0.7);
  EXPECT_GT(r.valid.headline(), 0.95) << "valid loss " << r.valid.loss;
}

// Every config in configs/tmaze (others add theirs there) builds for the T-Maze task and reads an
// episode into one output pair per step.
TEST(TMaze, EveryShippedConfigBuilds) {
  int64_t seen = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(RILL_SOURCE_DIR) + "/configs/tmaze")) {
    if (e.path().extension() != ".json") continue;
    SCOPED_TRACE(e.path().string());
    TrainConfig c = TrainConfig::from_file(e.path().string());
    c.task["corridor"] = 10;
    RunParts p = build_run(c);
    EXPECT_EQ(p.task->type(), "tmaze");
    NoGradGuard no_grad;
    Tensor y = p.model->forward(p.task->next_batch().inputs.narrow(0, 0, 2).contiguous(), nullptr);
    EXPECT_EQ(y.shape(), Shape({2, 10, 2}));
    ++seen;
  }
  EXPECT_GE(seen, 2);
}

// The table command's library half: a bad corridor is refused before any training, and a tiny
// run fills one cell per (config, corridor) with the test split's success rate.
TEST(TMaze, TableOverConfigsAndCorridors) {
  TempDir dir;
  const std::string path = dir / "tiny.json";
  {
    TrainConfig c;
    c.task = {{"type", "language_modeling"}};  // replaced by the T-Maze task
    c.model = {{"d_model", 16},
               {"n_layers", 1},
               {"mlp_hidden", 32},
               {"mixers", {{{"type", "softmax_attention"}, {"heads", 2}}}}};
    c.batch = 8, c.warmup = 2, c.eval_every = 10, c.eval_batches = 1;
    std::ofstream(path) << c.to_json().dump();
  }
  TMazeTableOptions o;
  o.compare.seconds = 0;
  o.compare.steps = 12;
  o.compare.out_dir = dir / "runs";
  o.test_episodes = 24;
  o.valid_episodes = 8;
  o.corridors = {10, 1001};
  expect_error([&] { tmaze_table({path}, o); }, {"[config]", "\"corridor\" is 1001"});
  EXPECT_FALSE(std::filesystem::exists(dir / "runs"));
  o.corridors = {10, 12};
  const std::vector<TMazeCell> cells = tmaze_table({path}, o);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0].corridor, 10);
  EXPECT_EQ(cells[1].corridor, 12);
  for (const TMazeCell& c : cells) {
    EXPECT_EQ(c.name, "tiny");
    EXPECT_EQ(c.steps, 12);
    EXPECT_EQ(c.test_episodes, 24);
    // A fraction of 24 episodes.
    EXPECT_GE(c.success, 0.0);
    EXPECT_LE(c.success, 1.0);
    EXPECT_DOUBLE_EQ(c.success * 24, std::round(c.success * 24));
  }
  const std::string md = tmaze_markdown(cells);
  EXPECT_NE(md.find("| config \\ corridor | 10 | 12 |"), std::string::npos) << md;
  EXPECT_NE(md.find(fmt::format("| tiny | {:.3f} | {:.3f} |", cells[0].success, cells[1].success)),
            std::string::npos)
      << md;
}
