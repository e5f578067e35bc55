// The comparison (rill compare, train/compare.h) over several data sets: every config runs on
// every listed data set, with one row per (data set, config) in that order and its run under
// out_dir/<data set>/<config>, the naive forecasts of each series as rows of their own; a data
// set of the wrong kind for the configs' task (or one not prepared, or a task that reads none) is
// refused by name before any training; models that read real-valued features get a step time
// like token models; without a list the table keeps its one-data-set shape. The Aaren
// comparison configs (configs/aaren) differ only in their mixer and out_dir. All on data made
// here.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "rill/train/checkpoint.h"
#include "rill/train/compare.h"
#include "tests/support/datasets.h"
#include "tests/support/files.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A tiny run config over `task` with the given mixer, written as dir/<name>.json.
std::string write_config(const TempDir& dir, const std::string& name, const json& task,
                         const json& mixer) {
  TrainConfig c;
  c.task = task;
  c.model = {{"d_model", 16}, {"n_layers", 1}, {"mlp_hidden", 32}, {"mixers", {mixer}}};
  c.batch = 8, c.warmup = 2, c.eval_every = 10, c.eval_batches = 1;
  const std::string path = dir / (name + ".json");
  std::ofstream(path) << c.to_json().dump(2);
  return path;
}

const json kSoftmax = {{"type", "softmax_attention"}, {"heads", 2}};
const json kLinear = {{"type", "linear_attention"}, {"heads", 2}};

CompareOptions tiny_options(const TempDir& dir, const std::string& data_dir) {
  CompareOptions o;
  o.seconds = 0;
  o.steps = 6;
  o.out_dir = dir / "runs";
  o.data_dir = data_dir;
  o.timed_steps = 16;
  return o;
}

bool has_line_starting(const std::string& md, const std::string& start) {
  return md.find("\n" + start) != std::string::npos;
}

}  // namespace

TEST(Compare, EveryConfigOnEveryDataSet) {
  TempDir dir;
  const std::string data = dir / "data";
  prepare_sine(data, "wave-a", 1200);
  prepare_sine(data, "wave-b", 1500);
  const json task = {{"type", "forecasting"}, {"dataset", "wave-a"}, {"input_len", 24}};
  const std::vector<std::string> configs = {write_config(dir, "soft", task, kSoftmax),
                                            write_config(dir, "lin", task, kLinear)};
  CompareOptions o = tiny_options(dir, data);
  o.datasets = {"wave-b", "wave-a"};
  const std::vector<CompareRow> rows = compare(configs, o);
  ASSERT_EQ(rows.size(), 4u);
  const std::pair<std::string, std::string> want[] = {
      {"wave-b", "soft"}, {"wave-b", "lin"}, {"wave-a", "soft"}, {"wave-a", "lin"}};
  for (size_t i = 0; i < rows.size(); ++i) {
    const CompareRow& r = rows[i];
    SCOPED_TRACE(r.dataset + "/" + r.name);
    EXPECT_EQ(r.dataset, want[i].first);
    EXPECT_EQ(r.name, want[i].second);
    EXPECT_EQ(r.steps, 6);
    // The model reads one real value per step: it has a step time and a state all the same.
    EXPECT_GT(r.step_us, 0);
    EXPECT_GT(r.state_1k, 0u);
    EXPECT_EQ(r.test.primary, "mse");
    EXPECT_GT(r.test.value("last_value_mae"), 0);
    EXPECT_GT(r.test.value("seasonal_naive_mse"), 0);
    // The run folder, and the data set its run trained on.
    const std::string ckpt = fs::path(o.out_dir) / r.dataset / r.name / "checkpoint.safetensors";
    ASSERT_TRUE(fs::exists(ckpt)) << ckpt;
    EXPECT_EQ(load_model(ckpt).info.run["task"]["dataset"], r.dataset);
  }
  // The two series differ in length, so their test windows and baselines differ too.
  EXPECT_NE(rows[0].test.value("last_value_mse"), rows[2].test.value("last_value_mse"));
  EXPECT_EQ(rows[0].test.value("last_value_mse"), rows[1].test.value("last_value_mse"));
  const std::string md = compare_table(rows);
  EXPECT_TRUE(md.starts_with("| data set | config | parameters |")) << md;
  EXPECT_NE(md.find("| step µs | valid mse | test mse | test mae |"), std::string::npos) << md;
  for (const char* start :
       {"| wave-b | soft |", "| wave-b | lin |", "| wave-a | soft |", "| wave-a | lin |"})
    EXPECT_TRUE(has_line_starting(md, start)) << start << "\n" << md;
  // Each data set's baselines once (both configs read the same windows), after its configs.
  for (const CompareRow& r : {rows[0], rows[2]}) {
    const std::string last = fmt::format(
        "| {} | naive last value | - | - | - | - | - | - | - | - | - | {:.4f} | {:.4f} |",
        r.dataset, r.test.value("last_value_mse"), r.test.value("last_value_mae"));
    const std::string seasonal = fmt::format(
        "| {} | seasonal naive | - | - | - | - | - | - | - | - | - | {:.4f} | {:.4f} |", r.dataset,
        r.test.value("seasonal_naive_mse"), r.test.value("seasonal_naive_mae"));
    EXPECT_TRUE(has_line_starting(md, last)) << last << "\n" << md;
    EXPECT_TRUE(has_line_starting(md, seasonal)) << seasonal << "\n" << md;
  }
  EXPECT_LT(md.find("| wave-b | lin |"), md.find("| wave-b | naive last value |"));
  EXPECT_LT(md.find("| wave-b | seasonal naive |"), md.find("| wave-a | soft |"));
  EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 2 + 4 + 4);  // head, rule, configs, baselines
}

// Without a list of data sets: one comparison on the configs' own data set, no data set column,
// and a classifier (real-valued inputs, no baselines) gets its step time too.
TEST(Compare, OneDataSetKeepsItsTable) {
  TempDir dir;
  const std::string data = dir / "data";
  prepare_cue_set(data, "cue");
  const std::string config =
      write_config(dir, "soft", {{"type", "classification"}, {"dataset", "cue"}}, kSoftmax);
  const std::vector<CompareRow> rows = compare({config}, tiny_options(dir, data));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].dataset, "");
  EXPECT_GT(rows[0].step_us, 0);
  EXPECT_TRUE(fs::exists(dir / "runs/soft/checkpoint.safetensors"));
  const std::string md = compare_table(rows);
  EXPECT_TRUE(md.starts_with(
      "| config | parameters | FLOPs/token @12 (train seq) | state @1k | state @64k | "
      "steps | train s | train seq/s | step µs | valid accuracy | test accuracy |\n"))
      << md;
  EXPECT_TRUE(has_line_starting(md, "| soft | ")) << md;
  EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 3);
}

// Every (data set, config) pair is checked before any training: a series for a classifier, a
// labelled set for a forecaster (registered or made here), a name that is neither known nor
// prepared, a registered one not prepared, a task that reads no data set, a repeated name.
TEST(Compare, RefusesDataSetsItCannotRun) {
  TempDir dir;
  const std::string data = dir / "data";
  prepare_cue_set(data, "cue");
  prepare_sine(data, "wave", 1200);
  const std::string classify =
      write_config(dir, "classify", {{"type", "classification"}, {"dataset", "cue"}}, kSoftmax);
  const std::string forecast = write_config(
      dir, "forecast", {{"type", "forecasting"}, {"dataset", "wave"}, {"input_len", 24}}, kSoftmax);
  const std::string tmaze =
      write_config(dir, "maze", {{"type", "tmaze"}, {"corridor", 10}}, kSoftmax);
  CompareOptions o = tiny_options(dir, data);
  auto refused = [&](const std::vector<std::string>& configs,
                     const std::vector<std::string>& datasets,
                     const std::vector<std::string>& says) {
    o.datasets = datasets;
    expect_error([&] { compare(configs, o); }, says);
    EXPECT_FALSE(fs::exists(o.out_dir)) << "something was trained";
  };
  refused({classify}, {"cue", "wave"},
          {"[compare]", "wave is a series", "classify trains a classification task",
           "reads a labelled set"});
  refused({forecast}, {"wave", "cue"},
          {"[compare]", "cue is a labelled set", "forecast trains a forecasting task",
           "reads a series", "sunspots"});
  refused({forecast}, {"digits"}, {"digits is a labelled set", "forecast", "reads a series"});
  refused({forecast}, {"nowhere"},
          {"nowhere is neither a known data set nor prepared in", "forecast", "reads a series"});
  refused({forecast}, {"us-births"},
          {"us-births (for forecast) is not prepared in", "rill data us-births --data-dir"});
  refused({tmaze}, {"cue"}, {"maze trains a tmaze task, which reads no data set by name"});
  refused({forecast}, {"wave", "wave"}, {"wave is listed twice"});
  // A series the forecaster's windows do not fit, found by building its task before training.
  prepare_sine(data, "short", 40);
  refused({forecast}, {"wave", "short"}, {"[compare] forecast on short:"});
}

// The command line: --datasets and --steps reach the comparison, and a wrong kind exits non-zero
// with the message.
TEST(Compare, CommandLine) {
  TempDir dir;
  prepare_cue_set(dir / "data", "cue");
  prepare_sine(dir / "data", "wave", 1200);
  write_config(dir, "forecast", {{"type", "forecasting"}, {"dataset", "wave"}, {"input_len", 24}},
               kLinear);
  auto cli = [&](const std::string& args) {
    const std::string out = dir / "out.txt";
    const int status = std::system(fmt::format("cd {} && OMP_WAIT_POLICY=passive {} {} > {} 2>&1",
                                               dir.str(), RILL_CLI, args, out)
                                       .c_str());
    return std::pair{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_all(out)};
  };
  auto [code, text] =
      cli("compare forecast.json --datasets cue --minutes 0 --steps 4 "
          "--data-dir data --out runs");
  EXPECT_NE(code, 0);
  EXPECT_NE(text.find("cue is a labelled set, but forecast trains a forecasting task"),
            std::string::npos)
      << text;
  std::tie(code, text) =
      cli("compare forecast.json --datasets wave --minutes 0 --steps 4 --data-dir data --out runs");
  EXPECT_EQ(code, 0) << text;
  EXPECT_NE(text.find("\n| wave | forecast |"), std::string::npos) << text;
  EXPECT_NE(text.find("\n| wave | naive last value |"), std::string::npos) << text;
  EXPECT_TRUE(fs::exists(dir / "runs/wave/forecast/checkpoint.safetensors"));
}

// The two comparisons' configs: the Aaren one of each pair is its Transformer one with the
// mixer's type (and the out_dir) changed, so the comparison compares the mixers alone.
TEST(Compare, AarenConfigsDifferOnlyInTheMixer) {
  const std::string dir = std::string(RILL_SOURCE_DIR) + "/configs/aaren/";
  for (const char* kind : {"forecast", "forecast_long", "classify"}) {
    SCOPED_TRACE(kind);
    json transformer = json::parse(read_all(dir + kind + "_transformer.json"));
    json aaren = json::parse(read_all(dir + kind + "_aaren.json"));
    ASSERT_EQ(transformer["model"]["mixers"].size(), 1u);
    EXPECT_EQ(transformer["model"]["mixers"][0]["type"], "softmax_attention");
    EXPECT_EQ(aaren["model"]["mixers"][0]["type"], "aaren");
    aaren["model"]["mixers"][0]["type"] = "softmax_attention";
    aaren["out_dir"] = transformer["out_dir"];
    EXPECT_EQ(aaren, transformer);
    TrainConfig::from_json(transformer).validate();
  }
}
