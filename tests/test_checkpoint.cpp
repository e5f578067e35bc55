// Checkpoints of real runs: golden losses of the real training loop (the trainer, a language
// model with a recurrent mixer and carried state), bitwise resume in a new process, atomic
// writes under SIGKILL, and refusal of checkpoints that do not fit (another model, another
// program's safetensors file, missing metadata), with messages that say what is wrong.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "rill/io/safetensors.h"
#include "rill/models/stack_model.h"
#include "rill/optim/adamw.h"
#include "rill/train/checkpoint.h"
#include "rill/train/trainer.h"
#include "tests/support/runs.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json kMixer = {{"type", "linear_attention"}, {"heads", 2}, {"chunk", 8}, {"local", "conv3"}};

// The golden run: f64, so that only the summation order inside BLAS can move its losses.
TrainConfig golden_run(const std::string& dir) {
  TrainConfig c = tiny_lm_run(dir, dir + "/run", kMixer, "f64");
  c.steps = 40, c.warmup = 5, c.eval_every = 20, c.checkpoint_every = 1000;
  return c;
}

std::vector<double> step_losses(const TrainConfig& cfg, bool resume, int64_t stop_at = 0) {
  std::vector<double> losses;
  TrainEvents ev;
  ev.on_step = [&](const StepEvent& e) { losses.push_back(e.loss); };
  if (stop_at > 0) ev.should_stop = [&] { return int64_t(losses.size()) == stop_at; };
  train(cfg, resume, ev);
  return losses;
}

// Runs this test binary again with one test selected and an environment variable set.
int run_child(const std::string& test, const std::string& env) {
  std::string cmd = fmt::format("{} {} --gtest_filter={} > /dev/null 2>&1", env,
                                fs::read_symlink("/proc/self/exe").string(), test);
  return std::system(cmd.c_str());
}

std::shared_ptr<SequenceModel> small_model(int64_t d_model) {
  return make_model(
      {{"d_model", d_model}, {"n_layers", 2}, {"mlp_hidden", 4 * d_model}, {"mixers", {kMixer}}},
      {256, 0, 256}, 1);
}

}  // namespace

// Golden: the real loop's 40 losses from a fixed seed reproduce the stored ones. The tolerance
// is the table's cross-machine entry: the file was written on one machine, and another BLAS
// kernel (AVX2 instead of AVX-512) orders its sums differently. RILL_UPDATE_GOLDEN=1 rewrites it.
TEST(Checkpoint, GoldenLossesOfTheRealLoop) {
  const std::string path = std::string(RILL_SOURCE_DIR) + "/tests/golden/tiny_lm_losses.txt";
  TempDir dir;
  prepare_pattern_corpus(dir.str());
  std::vector<double> losses = step_losses(golden_run(dir.str()), false);
  ASSERT_EQ(losses.size(), 40u);
  EXPECT_LT(losses.back(), 0.6 * losses.front());  // it learns the pattern
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
    EXPECT_NEAR(losses[i], golden[i], kCrossMachineTol * std::abs(golden[i])) << "step " << i;
}

// Child half of ResumeInANewProcessIsBitwiseIdentical: trains until a step, then stops and
// saves as Ctrl-C would.
TEST(Checkpoint, ChildTrainsAndStops) {
  const char* dir = std::getenv("RILL_CHILD_DIR");
  if (!dir) GTEST_SKIP() << "runs only as the child of ResumeInANewProcessIsBitwiseIdentical";
  TrainConfig cfg = golden_run(dir);
  cfg.out_dir = std::string(dir) + "/part";
  step_losses(cfg, false, std::atoi(std::getenv("RILL_CHILD_STOP")));
}

TEST(Checkpoint, ResumeInANewProcessIsBitwiseIdentical) {
  TempDir dir;
  prepare_pattern_corpus(dir.str());
  TrainConfig cfg = golden_run(dir.str());
  std::vector<double> whole = step_losses(cfg, false);
  ASSERT_EQ(run_child("Checkpoint.ChildTrainsAndStops",
                      fmt::format("RILL_CHILD_DIR={} RILL_CHILD_STOP=13", dir.str())),
            0);
  TrainConfig part = cfg;
  part.out_dir = dir / "part";
  EXPECT_EQ(read_checkpoint_info(part.out_dir + "/checkpoint.safetensors").progress.step, 13);
  std::vector<double> rest = step_losses(part, true);
  ASSERT_EQ(rest.size(), 27u);
  for (size_t i = 0; i < rest.size(); ++i) EXPECT_EQ(rest[i], whole[13 + i]) << "step " << 13 + i;
  SafetensorsReader a(cfg.out_dir + "/checkpoint.safetensors"),
      b(part.out_dir + "/checkpoint.safetensors");
  ASSERT_EQ(a.names(), b.names());
  for (const std::string& n : a.names()) EXPECT_TRUE(bitwise_equal(a.load(n), b.load(n))) << n;
}

// Child half of KilledWriterLeavesACheckpoint: rewrites the checkpoint until killed, each time
// with the head's weights filled with the step number it records.
TEST(Checkpoint, ChildWritesForever) {
  const char* path = std::getenv("RILL_CHILD_LOOP");
  if (!path) GTEST_SKIP() << "runs only as the child of KilledWriterLeavesACheckpoint";
  auto m = small_model(256);  // a few MB, so that kills land mid-write
  TrainingProgress p;
  for (;;) {
    p.step += 1;
    static_cast<StackModel&>(*m).blocks[0]->mlp->fc1->bias.fill_(double(p.step));
    save_checkpoint(path, {m->config_json(), json::object(), json(), m.get(), nullptr, nullptr, p});
  }
}

TEST(Checkpoint, KilledWriterLeavesACheckpoint) {
  TempDir dir;
  const std::string path = dir / "killed.safetensors";
  auto first = small_model(256);
  static_cast<StackModel&>(*first).blocks[0]->mlp->fc1->bias.fill_(0.0);
  save_checkpoint(
      path, {first->config_json(), json::object(), json(), first.get(), nullptr, nullptr, {}});
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  int64_t newest = 0;
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
    // Whatever it holds is one whole checkpoint: the weights of the step its metadata records.
    LoadedModel l = load_model(path);
    const int64_t step = l.info.progress.step;
    const Tensor bias = static_cast<StackModel&>(*l.model).blocks[0]->mlp->fc1->bias;
    for (double v : bias.to_vector<double>()) ASSERT_EQ(v, double(step)) << "round " << round;
    EXPECT_EQ(l.info.weights_sha256, weights_sha256(*l.model));
    newest = std::max(newest, step);
  }
  EXPECT_GT(newest, 0) << "no writer finished a single checkpoint";
  int torn = 0;  // temporaries left by writers killed mid-write (timing decides how many)
  for (const auto& e : fs::directory_iterator(dir.str()))
    if (e.path().filename().string().rfind("killed.safetensors.tmp.", 0) == 0) ++torn;
  std::cout << "writers killed mid-write: " << torn << " of 6\n";
}

TEST(Checkpoint, RefusesWhatDoesNotFit) {
  TempDir dir;
  const std::string path = dir / "a.safetensors";
  auto a = small_model(32);
  optim::AdamW opt(optim::param_groups(*a, 0.0), 1e-3);
  save_checkpoint(path, {a->config_json(), json::object(), json(), a.get(), &opt, nullptr, {}});
  auto wider = small_model(64);
  expect_error([&] { load_checkpoint(path, wider->config_json(), *wider); },
               {"[checkpoint]", path, "d_model: 32 in the checkpoint, 64 in the model"});
  // The refused model was not touched.
  auto fresh = small_model(64);
  EXPECT_TRUE(bitwise_equal(wider->parameters()[0], fresh->parameters()[0]));
  // The optimiser state is there when asked for; a carried state is not.
  State s = a->init_state(2);
  expect_error([&] { load_checkpoint(path, a->config_json(), *a, nullptr, &s); },
               {"[checkpoint]", "no carried recurrent state"});
  // Another program's safetensors file: says what is missing, never "map::at".
  save_safetensors(path, {{"x", Tensor::ones({2})}});
  expect_error([&] { load_model(path); },
               {"[checkpoint]", "without rill's metadata", "not a rill checkpoint"});
  save_safetensors(path, {{"x", Tensor::ones({2})}}, {{"format", "rill-checkpoint-2"}});
  expect_error([&] { load_model(path); }, {"[checkpoint]", "no \"rill.model\" metadata"});
  save_safetensors(path, {{"x", Tensor::ones({2})}},
                   {{"format", "rill-checkpoint-2"}, {"rill.model", "{}"}, {"rill.task", "{}"}});
  expect_error([&] { load_model(path); }, {"[checkpoint]", "no \"rill.training\" metadata"});
  save_safetensors(path, {{"x", Tensor::ones({2})}}, {{"format", "rill-checkpoint-1"}});
  expect_error([&] { load_model(path); },
               {"[checkpoint]", "\"rill-checkpoint-1\"", "another version of rill"});
}
