// Training state end to end on a tiny language model: golden losses, bitwise resume across
// processes, atomic checkpoint writes under SIGKILL, and refusal of mismatched checkpoints.
#include "rill/io/checkpoint.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "rill/io/safetensors.h"
#include "rill/nn/dropout.h"
#include "rill/nn/embedding.h"
#include "rill/nn/linear.h"
#include "rill/nn/mlp.h"
#include "rill/nn/norm.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/softmax.h"
#include "rill/optim/adamw.h"
#include "rill/optim/clip.h"
#include "rill/optim/schedule.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kVocab = 16, kBatch = 4, kSeq = 12;

struct TinyConfig {
  int64_t dim = 8, hidden = 32;
  DType dtype = DType::f64;
  std::string json() const {
    return fmt::format(R"({{"vocab": {}, "dim": {}, "hidden": {}, "dtype": "{}"}})", kVocab, dim,
                       hidden, dtype_name(dtype));
  }
};

// Embedding -> LayerNorm -> dropout -> MLP (residual) -> head: every kind of state a run has.
class TinyLM : public nn::Module {
 public:
  explicit TinyLM(const TinyConfig& c, uint64_t seed = 1)
      : emb(register_module("emb", std::make_shared<nn::Embedding>(kVocab, c.dim, seed, 0.5, c.dtype))),
        norm(register_module("norm", std::make_shared<nn::LayerNorm>(c.dim, 1e-5, true, c.dtype))),
        drop(register_module("drop", std::make_shared<nn::Dropout>(0.1, seed + 7))),
        mlp(register_module("mlp", std::make_shared<nn::MLP>(c.dim, c.hidden, nn::MLPKind::swiglu,
                                                             seed + 1, true, c.dtype))),
        head(register_module("head", std::make_shared<nn::Linear>(c.dim, kVocab, seed + 2,
                                                                  nn::LinearOptions{true, nn::LinearInit::fan_in_uniform, 0.02, c.dtype}))) {}

  Tensor loss(const Tensor& ids, const Tensor& targets) {
    Tensor h = emb->forward(ids);
    h = add(h, mlp->forward(drop->forward(norm->forward(h))));
    Tensor logits = head->forward(h);
    return cross_entropy(logits.reshape({-1, kVocab}), targets.reshape({-1}));
  }

  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::MLP> mlp;
  std::shared_ptr<nn::Linear> head;
};

// A learnable synthetic stream: token i of the stream is (3i + i/5) mod vocab.
int64_t token_at(uint64_t i) { return static_cast<int64_t>((3 * i + i / 5) % kVocab); }

// Batch starting at a stream position: inputs and next-token targets.
std::pair<Tensor, Tensor> batch_at(uint64_t pos) {
  std::vector<int64_t> ids, tg;
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t t = 0; t < kSeq; ++t) {
      ids.push_back(token_at(pos + b * (kSeq + 1) + t));
      tg.push_back(token_at(pos + b * (kSeq + 1) + t + 1));
    }
  return {Tensor::from_vector(ids, {kBatch, kSeq}), Tensor::from_vector(tg, {kBatch, kSeq})};
}

struct TrainingRun {
  TrainingRun() = default;
  explicit TrainingRun(const TinyConfig& c) : config(c) {}
  TinyConfig config;
  TinyLM model{config};
  optim::AdamW opt{optim::param_groups(model, 0.01), 1e-2};
  optim::Schedule schedule{optim::ScheduleKind::cosine, 2e-2, 5, 100, 1e-3};
  TrainingProgress progress;

  std::vector<double> train(int steps) {
    std::vector<double> losses;
    for (int s = 0; s < steps; ++s) {
      auto [x, y] = batch_at(progress.data_position);
      opt.set_lr(schedule.lr_at(progress.step));
      opt.zero_grad();
      Tensor l = model.loss(x, y);
      l.backward();
      optim::clip_grad_norm(model.parameters(), 1.0);
      opt.step();
      losses.push_back(l.item<double>());
      progress.step += 1;
      progress.data_position += kBatch * (kSeq + 1);
    }
    return losses;
  }
  void save(const std::string& path) {
    progress.rngs["dropout"] = model.drop->generator;
    save_checkpoint(path, config.json(), model, &opt, progress);
  }
  void load(const std::string& path) {
    progress = load_checkpoint(path, config.json(), model, &opt);
    model.drop->generator = progress.rngs.at("dropout");
  }
};

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()))).string();
}

// Runs this test binary again with one test selected and an environment variable set.
int run_child(const std::string& test, const std::string& env) {
  // Resolve our own path: /proc/self/exe inside the shell would be the shell.
  std::string cmd = fmt::format("{} {} --gtest_filter={} > /dev/null 2>&1", env,
                    fs::read_symlink("/proc/self/exe").string(), test);
  return std::system(cmd.c_str());
}

}  // namespace

// Golden: 50 steps from a fixed seed reproduce the stored losses (f64 model, so only summation
// order in the BLAS can move them). RILL_UPDATE_GOLDEN=1 rewrites the file.
TEST(Checkpoint, GoldenLosses) {
  const std::string path = std::string(RILL_SOURCE_DIR) + "/tests/golden/tiny_lm_losses.txt";
  TrainingRun run;
  std::vector<double> losses = run.train(50);
  EXPECT_LT(losses.back(), 0.5 * losses.front());  // it learns the pattern
  if (std::getenv("RILL_UPDATE_GOLDEN")) {
    std::ofstream out(path);
    for (double l : losses) out << fmt::format("{:.17g}\n", l);
    GTEST_SKIP() << "rewrote " << path;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "missing " << path << " (run with RILL_UPDATE_GOLDEN=1)";
  std::vector<double> golden;
  for (double v; in >> v;) golden.push_back(v);
  ASSERT_EQ(golden.size(), losses.size());
  for (size_t i = 0; i < golden.size(); ++i)
    EXPECT_NEAR(losses[i], golden[i], 1e-8 * std::abs(golden[i])) << "step " << i;
}

// Child half of ResumeIsBitwiseIdentical: trains N steps and saves.
TEST(Checkpoint, ChildTrainsAndSaves) {
  const char* path = std::getenv("RILL_CHILD_SAVE");
  if (!path) GTEST_SKIP() << "runs only as the child of ResumeIsBitwiseIdentical";
  TrainingRun run;
  run.train(std::atoi(std::getenv("RILL_CHILD_STEPS")));
  run.save(path);
}

TEST(Checkpoint, ResumeIsBitwiseIdentical) {
  constexpr int N = 12;
  TrainingRun straight;
  std::vector<double> all = straight.train(2 * N);

  const std::string path = temp_path("rill_resume.safetensors");
  ASSERT_EQ(run_child("Checkpoint.ChildTrainsAndSaves",
                      fmt::format("RILL_CHILD_SAVE={} RILL_CHILD_STEPS={}", path, N)),
            0);
  TrainingRun resumed;
  resumed.load(path);
  EXPECT_EQ(resumed.progress.step, N);
  std::vector<double> second = resumed.train(N);
  for (int i = 0; i < N; ++i) EXPECT_EQ(second[i], all[N + i]) << "step " << N + i;
  auto a = straight.model.state_dict(), b = resumed.model.state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(bitwise_equal(a[i].second, b[i].second)) << a[i].first;
  auto sa = straight.opt.state(), sb = resumed.opt.state();
  std::map<std::string, Tensor> by_name(sb.begin(), sb.end());
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) EXPECT_TRUE(bitwise_equal(t, by_name.at(name))) << name;
  fs::remove(path);
}

// Child half of KilledWriterLeavesACheckpoint: rewrites the checkpoint until killed.
TEST(Checkpoint, ChildWritesForever) {
  const char* path = std::getenv("RILL_CHILD_LOOP");
  if (!path) GTEST_SKIP() << "runs only as the child of KilledWriterLeavesACheckpoint";
  TinyConfig big;
  big.dim = 256, big.hidden = 2048;  // a few MB, so that kills land mid-write
  TrainingRun run(big);
  for (;;) {
    run.progress.step += 1;
    run.save(path);
  }
}

TEST(Checkpoint, KilledWriterLeavesACheckpoint) {
  const std::string path = temp_path("rill_killed.safetensors");
  TinyConfig big;
  big.dim = 256, big.hidden = 2048;
  TrainingRun first(big);
  first.save(path);
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  for (int round = 0; round < 6; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // exec at once: nothing of the parent's OpenMP state is used after fork
      setenv("RILL_CHILD_LOOP", path.c_str(), 1);
      execl(exe.c_str(), exe.c_str(), "--gtest_filter=Checkpoint.ChildWritesForever", nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 97 * round));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer should still have been running";
    TrainingRun check(big);
    ASSERT_NO_THROW(check.load(path)) << "round " << round;
    // Whatever step it holds, it is a whole checkpoint of the same model.
    EXPECT_GE(check.progress.step, 0);
    EXPECT_TRUE(bitwise_equal(check.model.emb->weight, first.model.emb->weight));
  }
  int torn = 0;  // temporaries left by writers killed mid-write (timing decides how many)
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
    if (e.path().filename().string().rfind(fs::path(path).filename().string() + ".tmp.", 0) == 0)
      fs::remove(e.path()), ++torn;
  std::cout << "writers killed mid-write: " << torn << " of 6\n";
  fs::remove(path);
}

TEST(Checkpoint, RefusesAnotherModel) {
  const std::string path = temp_path("rill_mismatch.safetensors");
  TrainingRun run;
  run.save(path);
  TinyConfig other;
  other.dim = 16;
  TinyLM wider(other);
  optim::AdamW opt(optim::param_groups(wider, 0.0), 1e-3);
  expect_error([&] { load_checkpoint(path, other.json(), wider, &opt); },
               {"[checkpoint]", path, "dim: 8 in the checkpoint, 16 in the model"});
  // Same config text but different shapes (a mislabelled checkpoint): the shapes are named.
  expect_error([&] { load_checkpoint(path, run.config.json(), wider, &opt); },
               {"[checkpoint]", "\"emb.weight\"", "[16, 8]", "[16, 16]"});
  // The refused model was not touched.
  TinyLM fresh(other);
  EXPECT_TRUE(bitwise_equal(wider.emb->weight, fresh.emb->weight));
  // Not a checkpoint at all.
  save_safetensors(path, {{"x", Tensor::ones({2})}});
  expect_error([&] { load_checkpoint(path, run.config.json(), wider, &opt); },
               {"[checkpoint]", "not a rill checkpoint"});
  fs::remove(path);
}
