// The rill command as a user runs it: a table of ordinary mistakes (bad numbers in a config,
// impossible sizes, wrong flags, files that are not what they claim), each run through the
// built binary, must exit non-zero with a message naming the offending value, and leave the
// existing checkpoint and prepared data byte for byte as they were. Then Ctrl-C during training
// saves a checkpoint and exits cleanly.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "rill/data/corpus.h"
#include "rill/data/sha256.h"
#include "rill/io/safetensors.h"
#include "rill/train/checkpoint.h"
#include "rill/train/trainer.h"
#include "tests/support/runs.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Outcome {
  int code = 0;
  std::string output;  // stdout and stderr together
};

Outcome rill_cli(const std::string& args, const std::string& dir) {
  const std::string out = dir + "/cli_output.txt";
  const std::string cmd =
      fmt::format("cd {} && OMP_WAIT_POLICY=passive {} {} > {} 2>&1", dir, RILL_CLI, args, out);
  const int status = std::system(cmd.c_str());
  Outcome o;
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out);
  o.output.assign(std::istreambuf_iterator<char>(in), {});
  fs::remove(out);
  return o;
}

// SHA-256 of every file under a folder, by path: what "untouched" means.
std::map<std::string, std::string> digest(const std::string& dir) {
  std::map<std::string, std::string> d;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) d[e.path().string()] = data::sha256_file(e.path().string());
  return d;
}

void write_json(const std::string& path, const json& j) { std::ofstream(path) << j.dump(2); }

// A tiny run config as a JSON file the binary reads; data and out folders relative to `dir`.
json tiny_config() {
  TrainConfig c = tiny_lm_run("data", "run", {{"type", "linear_attention"}, {"heads", 2}});
  c.steps = 4, c.warmup = 1, c.eval_every = 4, c.eval_batches = 2, c.checkpoint_every = 4;
  return c.to_json();
}

}  // namespace

TEST(Cli, BadInputGetsAClearErrorAndTouchesNothing) {
  TempDir dir;
  const std::string d = dir.str();
  prepare_pattern_corpus(d + "/data");
  write_json(d + "/good.json", tiny_config());
  ASSERT_EQ(rill_cli("train --config good.json", d).code, 0);
  // A word-level corpus and a model trained on it, for the vocabulary check.
  data::CorpusInfo words;
  words.name = "words";
  words.registry = "test";
  words.package = "none";
  words.tokenizer = data::TokenizerKind::words;
  words.description = "made in the test";
  data::prepare_text(words, pattern_text(), d + "/data");
  json wc = tiny_config();
  wc["task"]["corpus"] = "words", wc["out_dir"] = "wordrun";
  write_json(d + "/words.json", wc);
  ASSERT_EQ(rill_cli("train --config words.json", d).code, 0);
  // A saved stream of the first model, and another model's checkpoint.
  ASSERT_EQ(rill_cli("generate --checkpoint run/checkpoint.safetensors --tokens 3 "
                     "--save-state s.safetensors",
                     d)
                .code,
            0);
  json other = tiny_config();
  other["seed"] = 9, other["out_dir"] = "other";
  write_json(d + "/other.json", other);
  ASSERT_EQ(rill_cli("train --config other.json", d).code, 0);
  // Not a checkpoint, and a damaged one.
  std::ofstream(d + "/junk.safetensors") << "this is not a safetensors file";
  fs::copy_file(d + "/run/checkpoint.safetensors", d + "/cut.safetensors");
  fs::resize_file(d + "/cut.safetensors", fs::file_size(d + "/cut.safetensors") / 2);
  {
    std::vector<std::pair<std::string, Tensor>> t{{"x", Tensor::ones({2})}};
    save_safetensors(d + "/plain.safetensors", t);
  }
  const auto before = digest(d);

  struct Case {
    std::string what;
    std::function<void(json&)> edit;  // a change to the good config (run with train)
    std::string args;                 // or a command line of its own
    std::vector<std::string> says;
  };
  auto mixer = [](json& c) -> json& { return c["model"]["mixers"][0]; };
  const std::vector<Case> cases = {
      {"fractional heads", [&](json& c) { mixer(c)["heads"] = 2.5; }, "", {"\"heads\"", "2.5"}},
      {"boolean heads", [&](json& c) { mixer(c)["heads"] = true; }, "", {"\"heads\"", "true"}},
      {"huge float d_model",
       [](json& c) { c["model"]["d_model"] = 1e30; },
       "",
       {"\"d_model\" must be an integer"}},
      {"huge d_model",
       [](json& c) { c["model"]["d_model"] = 100000; },
       "",
       {"\"d_model\" is 100000"}},
      {"negative head_dim",
       [&](json& c) { mixer(c)["head_dim"] = -4; },
       "",
       {"\"head_dim\" is -4"}},
      {"zero eps", [&](json& c) { mixer(c)["eps"] = 0; }, "", {"\"eps\" is 0", "positive"}},
      {"beta1 of 1", [](json& c) { c["beta1"] = 1.0; }, "", {"\"beta1\" is 1", "[0, 1)"}},
      {"negative beta2", [](json& c) { c["beta2"] = -0.1; }, "", {"\"beta2\" is -0.1"}},
      {"negative clip", [](json& c) { c["clip"] = -1; }, "", {"\"clip\" is -1"}},
      {"negative weight decay",
       [](json& c) { c["weight_decay"] = -0.1; },
       "",
       {"\"weight_decay\" is -0.1"}},
      {"zero batch", [](json& c) { c["batch"] = 0; }, "", {"\"batch\" is 0"}},
      {"negative batch", [](json& c) { c["batch"] = -3; }, "", {"\"batch\" is -3"}},
      {"zero seq", [](json& c) { c["task"]["seq"] = 0; }, "", {"\"seq\" is 0"}},
      {"zero layers", [](json& c) { c["model"]["n_layers"] = 0; }, "", {"\"n_layers\" is 0"}},
      {"a model larger than memory",
       [](json& c) { c["model"]["d_model"] = 60000, c["model"]["n_layers"] = 4000; },
       "",
       {"parameters", "more than this machine's"}},
      {"unknown key", [](json& c) { c["model"]["layers"] = 2; }, "", {"unknown key \"layers\""}},
      {"unknown mixer",
       [&](json& c) { mixer(c)["type"] = "mamba"; },
       "",
       {"unknown mixer type \"mamba\"", "linear_attention"}},
      {"batch too large for the valid split",
       [](json& c) { c["batch"] = 128; },
       "",
       {"the valid split of pattern", "too few for one batch"}},
      {"a corpus not prepared",
       [](json& c) { c["task"]["corpus"] = "austen"; },
       "",
       {"corpus austen is not prepared", "rill data austen"}},
      {"steps at the warm-up",
       nullptr,
       "train --config good.json --steps 1",
       {"\"warmup\" is 1", "steps is 1", "--steps"}},
      {"resume a finished run",
       nullptr,
       "train --config good.json --resume",
       {"already finished at step 4"}},
      {"config that is not JSON", nullptr, "train --config junk.safetensors", {"not valid JSON"}},
      {"eval of zero segments",
       nullptr,
       "eval --checkpoint run/checkpoint.safetensors --max-segments 0",
       {"--max-batches (--max-segments) must be at least 1, got 0"}},
      {"eval of a file that is not safetensors",
       nullptr,
       "eval --checkpoint junk.safetensors",
       {"junk.safetensors"}},
      {"eval of a truncated checkpoint",
       nullptr,
       "eval --checkpoint cut.safetensors",
       {"cut.safetensors"}},
      {"another program's safetensors",
       nullptr,
       "eval --checkpoint plain.safetensors",
       {"without rill's metadata"}},
      {"zero tokens",
       nullptr,
       "generate --checkpoint run/checkpoint.safetensors --tokens 0",
       {"--tokens must be positive, got 0"}},
      {"negative tokens",
       nullptr,
       "generate --checkpoint run/checkpoint.safetensors --tokens -5",
       {"--tokens must be positive, got -5"}},
      {"a prompt with a loaded state",
       nullptr,
       "generate --checkpoint run/checkpoint.safetensors --load-state s.safetensors --prompt x",
       {"drop --prompt and --seed"}},
      {"a state from another model",
       nullptr,
       "generate --checkpoint other/checkpoint.safetensors --load-state s.safetensors",
       {"s.safetensors was saved from another model"}},
      {"a vocabulary that changed",
       nullptr,
       "generate --checkpoint wordrun/checkpoint.safetensors --data-dir data2",
       {"vocab.txt", "not the vocabulary the model was trained with"}},
      {"info with both sources",
       nullptr,
       "info --config good.json --checkpoint run/checkpoint.safetensors",
       {"exactly one of --config or --checkpoint"}},
  };
  // The changed vocabulary lives in a second data folder, prepared from other text.
  data::prepare_text(words, "alpha beta gamma.\n" + pattern_text(2000), d + "/data2");
  const auto before2 = digest(d);
  for (const Case& c : cases) {
    std::string args = c.args;
    if (c.edit) {
      json j = tiny_config();
      c.edit(j);
      write_json(d + "/bad.json", j);
      args = "train --config bad.json";
    }
    Outcome o = rill_cli(args, d);
    EXPECT_NE(o.code, 0) << c.what << ": `rill " << args << "` succeeded:\n" << o.output;
    EXPECT_NE(o.output.find("error: "), std::string::npos) << c.what << ":\n" << o.output;
    for (const std::string& s : c.says)
      EXPECT_NE(o.output.find(s), std::string::npos)
          << c.what << ": the message lacks \"" << s << "\":\n"
          << o.output;
    EXPECT_EQ(o.output.find("map::at"), std::string::npos) << c.what;
  }
  fs::remove(d + "/bad.json");
  auto after = digest(d);
  for (const auto& [path, sha] : before2) {
    ASSERT_TRUE(after.count(path)) << path << " was removed";
    EXPECT_EQ(after[path], sha) << path << " was changed";
  }
  EXPECT_EQ(before.size() + digest(d + "/data2").size(), after.size())
      << "files appeared or vanished";
}

// Ctrl-C during `rill train` saves a checkpoint at the step it reached and exits with 130.
TEST(Cli, CtrlCSavesACheckpoint) {
  TempDir dir;
  const std::string d = dir.str();
  prepare_pattern_corpus(d + "/data");
  json c = tiny_config();
  c["steps"] = 1000000, c["eval_every"] = 1000000, c["checkpoint_every"] = 1000000;
  write_json(d + "/long.json", c);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (chdir(d.c_str()) != 0) _exit(126);
    std::freopen("train_output.txt", "w", stderr);
    execl(RILL_CLI, RILL_CLI, "train", "--config", "long.json", nullptr);
    _exit(127);
  }
  const std::string log = d + "/run/metrics.jsonl";
  for (int i = 0; i < 600 && !(fs::exists(log) && fs::file_size(log) > 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(log)) << "training never logged a step";
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the trainer died instead of saving";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const CheckpointInfo info = read_checkpoint_info(d + "/run/checkpoint.safetensors");
  EXPECT_GE(info.progress.step, 10);
  EXPECT_LT(info.progress.step, 1000000);
}
