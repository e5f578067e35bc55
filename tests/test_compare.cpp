// The comparison (rill compare, train/compare.h) over several data sets: every config runs on
// every listed data set, with one row per (data set, config) in that order and its run under
// out_dir/<data set>/<config>, the naive forecasts of each series as rows of their own; a data
// set of the wrong kind for the configs' task (or one not prepared, or a task that reads none) is
// refused by name before any training; models that read real-valued features get a step time
// like token models; without a list the table keeps its one-data-set shape. The Aaren
// comparison configs (configs/aaren) differ only in their mixer and out_dir. With --seeds, a run
// per config and seed and a table of means ± sample sd with every seed's run under it; the
// FLOPs/token column at the training context; every test metric a row reports a column. All on
// data made here.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "rill/data/corpus.h"
#include "rill/data/long_range.h"
#include "rill/train/checkpoint.h"
#include "rill/train/compare.h"
#include "tests/support/datasets.h"
#include "tests/support/files.h"
#include "tests/support/runs.h"
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

// The cells of a markdown line ("| a | b |" -> {a, b}).
std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  const std::string inner = line.substr(2, line.size() - 4);
  for (size_t begin = 0;;) {
    const size_t end = inner.find(" | ", begin);
    cells.push_back(inner.substr(begin, end == std::string::npos ? end : end - begin));
    if (end == std::string::npos) return cells;
    begin = end + 3;
  }
}

// The cell of column `column` (by its head) in the line of a table that starts with `start`; a
// table is its head's line, and the lines up to the first blank one.
std::string cell(const std::string& table, const std::string& start, const std::string& column) {
  const std::vector<std::string> head = cells_of(table.substr(0, table.find('\n')));
  const auto at = std::find(head.begin(), head.end(), column);
  EXPECT_NE(at, head.end()) << column << "\n" << table;
  const size_t from = table.find("\n" + start);
  EXPECT_NE(from, std::string::npos) << start << "\n" << table;
  if (at == head.end() || from == std::string::npos) return "";
  const std::string line = table.substr(from + 1, table.find('\n', from + 1) - from - 1);
  const std::vector<std::string> cells = cells_of(line);
  EXPECT_EQ(cells.size(), head.size()) << line;
  return size_t(at - head.begin()) < cells.size() ? cells[at - head.begin()] : "";
}

// "mean ± sd" (sample standard deviation) of two values, computed here the long way.
std::string mean_sd(double a, double b, int precision) {
  const double mean = (a + b) / 2;
  const double sd = std::sqrt(((a - mean) * (a - mean) + (b - mean) * (b - mean)) / (2 - 1));
  return fmt::format("{:.{}f} ± {:.{}f}", mean, precision, sd, precision);
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
  // --seeds: a bad list stops the command; a good one gives each seed its run under
  // <data set>/<config>/seed<N>, and the table of every seed's run.
  std::tie(code, text) = cli("compare forecast.json --seeds 1,,2 --minutes 0 --steps 2 --out bad");
  EXPECT_NE(code, 0);
  EXPECT_NE(text.find("seed 2 of the list \"1,,2\" is empty"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(dir / "bad"));
  std::tie(code, text) =
      cli("compare forecast.json --datasets wave --seeds 3,4 --minutes 0 --steps 2 --data-dir data "
          "--out seeded");
  EXPECT_EQ(code, 0) << text;
  EXPECT_NE(text.find("\n| wave | forecast | 2 |"), std::string::npos) << text;
  EXPECT_NE(text.find("\n| wave | forecast | 4 |"), std::string::npos) << text;
  for (const char* seed : {"seed3", "seed4"})
    EXPECT_TRUE(
        fs::exists(dir / fmt::format("seeded/wave/forecast/{}/checkpoint.safetensors", seed)));
}

// --seeds: every config runs once per seed (config by config), its "seed" replaced, under
// out_dir/<config>/seed<N>; the seeds give different runs; the table's row of a config gives the
// mean ± sample sd over its seeds of every measured number, with the seed count, and a second
// table gives each seed's run; the FLOPs column is the model's own at the training context.
TEST(Compare, SeedsRunEveryConfigOncePerSeed) {
  TempDir dir;
  const std::string data = dir / "data";
  prepare_sine(data, "wave", 1200);
  const json task = {{"type", "forecasting"}, {"dataset", "wave"}, {"input_len", 24}};
  const std::vector<std::string> configs = {write_config(dir, "soft", task, kSoftmax),
                                            write_config(dir, "lin", task, kLinear)};
  CompareOptions o = tiny_options(dir, data);
  o.seeds = {1, 2};
  const std::vector<CompareRow> rows = compare(configs, o);
  ASSERT_EQ(rows.size(), 4u);
  const std::pair<std::string, uint64_t> want[] = {
      {"soft", 1}, {"soft", 2}, {"lin", 1}, {"lin", 2}};
  for (size_t i = 0; i < rows.size(); ++i) {
    const CompareRow& r = rows[i];
    SCOPED_TRACE(fmt::format("{} seed {}", r.name, r.seed));
    EXPECT_EQ(r.name, want[i].first);
    EXPECT_EQ(r.seed, want[i].second);
    EXPECT_EQ(r.dataset, "");
    EXPECT_EQ(r.steps, 6);
    const std::string run = fs::path(o.out_dir) / r.name / fmt::format("seed{}", r.seed);
    ASSERT_TRUE(fs::exists(run + "/checkpoint.safetensors")) << run;
    EXPECT_EQ(load_model(run + "/checkpoint.safetensors").info.run["seed"], r.seed);
    // The FLOPs per token of the config's model with the forecaster's input window of context.
    TrainConfig c = TrainConfig::from_file(configs[i / 2]);
    c.data_dir = data;
    EXPECT_EQ(r.flops_context, 24);
    EXPECT_EQ(r.flops_per_token, build_run(c).model->info(24).flops_per_token);
  }
  EXPECT_FALSE(fs::exists(fs::path(o.out_dir) / "soft/checkpoint.safetensors"));
  // Another seed, another initialisation and order of batches: other results.
  for (size_t i : {0, 2}) {
    EXPECT_NE(rows[i].test.value("mse"), rows[i + 1].test.value("mse")) << rows[i].name;
    EXPECT_NE(rows[i].valid.value("mse"), rows[i + 1].valid.value("mse")) << rows[i].name;
  }
  const std::string md = compare_table(rows);
  const size_t split = md.find("\nEvery seed's run:\n\n");
  ASSERT_NE(split, std::string::npos) << md;
  const std::string summary = md.substr(0, split);
  const std::string per_seed = md.substr(split + std::string("\nEvery seed's run:\n\n").size());
  EXPECT_TRUE(summary.starts_with("| config | seeds | parameters | FLOPs/token @24 (train seq) |"))
      << md;
  EXPECT_TRUE(per_seed.starts_with("| config | seed | parameters | FLOPs/token @24 (train seq) |"))
      << md;
  // Two config rows and the two baselines; four runs.
  EXPECT_EQ(std::count(summary.begin(), summary.end(), '\n'), 2 + 2 + 2);
  EXPECT_EQ(std::count(per_seed.begin(), per_seed.end(), '\n'), 2 + 4);
  for (size_t i : {0, 2}) {
    const CompareRow &a = rows[i], &b = rows[i + 1];
    SCOPED_TRACE(a.name);
    const std::string start = "| " + a.name + " |";
    EXPECT_EQ(cell(summary, start, "seeds"), "2");
    EXPECT_EQ(cell(summary, start, "steps"), "6");  // the same in both: no spread
    EXPECT_EQ(cell(summary, start, "FLOPs/token @24 (train seq)"),
              fmt::format("{:.1f}K", a.flops_per_token / 1e3));
    EXPECT_EQ(cell(summary, start, "valid mse"),
              mean_sd(a.valid.value("mse"), b.valid.value("mse"), 4));
    EXPECT_EQ(cell(summary, start, "test mse"),
              mean_sd(a.test.value("mse"), b.test.value("mse"), 4));
    EXPECT_EQ(cell(summary, start, "test mae"),
              mean_sd(a.test.value("mae"), b.test.value("mae"), 4));
    EXPECT_EQ(cell(summary, start, "train s"), mean_sd(a.train_seconds, b.train_seconds, 1));
    EXPECT_EQ(cell(summary, start, "train seq/s"), mean_sd(a.train_per_s, b.train_per_s, 0));
    EXPECT_EQ(cell(summary, start, "step µs"), mean_sd(a.step_us, b.step_us, 0));
    for (const CompareRow* r : {&a, &b}) {
      const std::string run = fmt::format("| {} | {} |", r->name, r->seed);
      EXPECT_EQ(cell(per_seed, run, "test mse"), fmt::format("{:.4f}", r->test.value("mse")));
      EXPECT_EQ(cell(per_seed, run, "valid mse"), fmt::format("{:.4f}", r->valid.value("mse")));
      EXPECT_EQ(cell(per_seed, run, "train s"), fmt::format("{:.1f}", r->train_seconds));
    }
  }
  // The baselines do not depend on the seed: one row each, as without seeds.
  EXPECT_TRUE(has_line_starting(
      summary, fmt::format("| naive last value | - | - | - | - | - | - | - | - | - | - | {:.4f} |",
                           rows[0].test.value("last_value_mse"))))
      << md;
}

// The table alone, on rows made here: three seeds of two configs, with the mean and sample sd
// of each measured number worked out by hand; steps that differ get a spread too; a metric only
// some rows report gets a column ("-" elsewhere), the split's sizes (tokens, recall tokens) none;
// rows that trained with other contexts give theirs in the FLOPs cells.
TEST(Compare, SeedTableOnMadeUpRows) {
  std::vector<CompareRow> rows;
  const double bits[] = {1.0, 2.0, 4.0}, recall[] = {0.5, 0.7, 0.9};
  for (const char* name : {"a", "b"})
    for (int k = 0; k < 3; ++k) {
      CompareRow r;
      r.name = name;
      r.seed = uint64_t(10 + k);
      r.parameters = 1'500'000;
      r.flops_per_token = name == std::string("a") ? 8.5e6 : 1.234e9;
      r.flops_context = name == std::string("a") ? 128 : 256;
      r.state_1k = r.state_64k = 2048;
      r.steps = 100 + 10 * k;
      r.train_per_s = 1000 + 100 * k;
      r.unit = "tokens";
      r.step_us = 50 + 10 * k;
      r.train_seconds = 10 + 10 * k;
      r.valid.primary = r.test.primary = "bits/byte";
      r.valid.values = {{"bits/byte", bits[k] + 1}, {"tokens", 4096}};
      r.test.values = {{"bits/byte", bits[k]}, {"tokens", 8192}};
      if (name == std::string("a")) r.test.values.push_back({"recall bits/byte", recall[k]});
      r.test.values.push_back({"recall tokens", name == std::string("a") ? 300.0 : 0.0});
      rows.push_back(r);
    }
  const std::string md = compare_table(rows);
  // bits: mean 7/3, sd sqrt(((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2) = sqrt(7/3) = 1.5275;
  // recall: 0.7 ± 0.2; steps, throughput, step time and train time each a mean ± sd of 10s.
  EXPECT_TRUE(
      md.starts_with("| config | seeds | parameters | FLOPs/token @train seq | state @1k | "
                     "state @64k | steps | train s | train tokens/s | step µs | valid "
                     "bits/byte | test bits/byte | test recall bits/byte |\n"))
      << md;
  EXPECT_TRUE(has_line_starting(md,
                                "| a | 3 | 1.50 M | 8.5M @128 | 2.0 KiB | 2.0 KiB | 110 ± 10 | "
                                "20.0 ± 10.0 | 1100 ± 100 | 60 ± 10 | 3.3333 ± 1.5275 | "
                                "2.3333 ± 1.5275 | 0.7000 ± 0.2000 |\n"))
      << md;
  EXPECT_TRUE(has_line_starting(md,
                                "| b | 3 | 1.50 M | 1.2G @256 | 2.0 KiB | 2.0 KiB | 110 ± 10 | "
                                "20.0 ± 10.0 | 1100 ± 100 | 60 ± 10 | 3.3333 ± 1.5275 | "
                                "2.3333 ± 1.5275 | - |\n"))
      << md;
  EXPECT_NE(md.find("\n\nEvery seed's run:\n\n| config | seed | parameters |"), std::string::npos)
      << md;
  EXPECT_TRUE(has_line_starting(md,
                                "| a | 12 | 1.50 M | 8.5M @128 | 2.0 KiB | 2.0 KiB | 120 | "
                                "30.0 | 1200 | 70 | 5.0000 | 4.0000 | 0.9000 |\n"))
      << md;
  EXPECT_TRUE(has_line_starting(md,
                                "| b | 11 | 1.50 M | 1.2G @256 | 2.0 KiB | 2.0 KiB | 110 | "
                                "20.0 | 1100 | 60 | 3.0000 | 2.0000 | - |\n"))
      << md;
  EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 2 + 2 + 3 + 2 + 6);
  // One seed of each: the plain table, the extra metric still a column.
  const std::string one = compare_table({rows[0], rows[3]});
  EXPECT_TRUE(one.starts_with("| config | parameters | FLOPs/token @train seq |")) << one;
  EXPECT_TRUE(has_line_starting(one,
                                "| b | 1.50 M | 1.2G @256 | 2.0 KiB | 2.0 KiB | 100 | 10.0 | "
                                "1000 | 50 | 2.0000 | 1.0000 | - |\n"))
      << one;
  EXPECT_EQ(one.find("Every seed"), std::string::npos) << one;
}

// A seed list with an empty item, a negative seed, something else than a whole number, or a seed
// twice is refused by name, before any training.
TEST(Compare, RefusesBadSeedLists) {
  EXPECT_EQ(parse_seeds("3"), std::vector<uint64_t>{3});
  EXPECT_EQ(parse_seeds("1,20,0"), (std::vector<uint64_t>{1, 20, 0}));
  expect_error([] { parse_seeds(""); }, {"[compare] seed 1 of the list \"\" is empty"});
  expect_error([] { parse_seeds("1,,2"); }, {"[compare] seed 2 of the list \"1,,2\" is empty"});
  expect_error([] { parse_seeds("1,2,"); }, {"seed 3 of the list \"1,2,\" is empty"});
  expect_error([] { parse_seeds("1,-2"); }, {"seed 2 of the list \"1,-2\" is negative (-2)"});
  expect_error([] { parse_seeds("1,x2"); },
               {"seed 2 of the list \"1,x2\" (x2) is not a whole number"});
  expect_error([] { parse_seeds("1, 2"); }, {"( 2) is not a whole number"});
  expect_error([] { parse_seeds("99999999999999999999"); }, {"is not a whole number from 0 to"});
  expect_error([] { parse_seeds("1,2,1"); }, {"seed 1 is listed twice in \"1,2,1\""});
  TempDir dir;
  prepare_cue_set(dir / "data", "cue");
  const std::string config =
      write_config(dir, "soft", {{"type", "classification"}, {"dataset", "cue"}}, kSoftmax);
  CompareOptions o = tiny_options(dir, dir / "data");
  o.seeds = {4, 5, 4};
  expect_error([&] { compare({config}, o); }, {"[compare] seed 4 is listed twice"});
  EXPECT_FALSE(fs::exists(o.out_dir)) << "something was trained";
}

// A language model's FLOPs are taken at its task's seq (a softmax attention's cost grows with the
// context, so the context matters).
TEST(Compare, LanguageModelFlopsAtItsSeq) {
  TempDir dir;
  const std::string data = dir / "data";
  prepare_pattern_corpus(data);
  const std::string config = write_config(
      dir, "soft", {{"type", "language_modeling"}, {"corpus", "pattern"}, {"seq", 16}}, kSoftmax);
  CompareOptions o = tiny_options(dir, data);
  o.steps = 2;
  const std::vector<CompareRow> rows = compare({config}, o);
  ASSERT_EQ(rows.size(), 1u);
  TrainConfig c = TrainConfig::from_file(config);
  c.data_dir = data;
  const RunParts parts = build_run(c);
  EXPECT_EQ(rows[0].flops_context, 16);
  EXPECT_EQ(rows[0].flops_per_token, parts.model->info(16).flops_per_token);
  EXPECT_LT(rows[0].flops_per_token, parts.model->info(1024).flops_per_token);
  const std::string md = compare_table(rows);
  EXPECT_NE(md.find("| FLOPs/token @16 (train seq) |"), std::string::npos) << md;
  const double f = rows[0].flops_per_token;
  ASSERT_TRUE(f >= 1e3 && f < 99.95e3) << f;
  EXPECT_EQ(cell(md, "| soft |", "FLOPs/token @16 (train seq)"), fmt::format("{:.1f}K", f / 1e3));
}

// A language model on a corpus with a recall marker reports "recall bits/byte" (and the count of
// the tokens it scored): the first gets a column of the table, the count none.
TEST(Compare, RecallMetricGetsAColumn) {
  TempDir dir;
  const std::string data = dir / "data";
  // The long-range corpus's generator, 24 documents (about 230 KB) rather than 480.
  data::CorpusInfo info = data::corpus_info("long-range");
  info.name = "recall";
  data::LongRangeOptions small;
  small.documents = 24;
  data::prepare_text(info, data::generate_long_range(small), data);
  const std::string config = write_config(
      dir, "soft", {{"type", "language_modeling"}, {"corpus", "recall"}, {"seq", 32}}, kSoftmax);
  CompareOptions o = tiny_options(dir, data);
  o.steps = 2;
  const std::vector<CompareRow> rows = compare({config}, o);
  ASSERT_EQ(rows.size(), 1u);
  const double* recall = rows[0].test.find("recall bits/byte");
  ASSERT_NE(recall, nullptr);
  ASSERT_NE(rows[0].test.find("recall tokens"), nullptr);
  const std::string md = compare_table(rows);
  EXPECT_NE(md.find("| valid bits/byte | test bits/byte | test recall bits/byte |\n"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("tokens |"), std::string::npos) << md;
  EXPECT_EQ(cell(md, "| soft |", "test recall bits/byte"), fmt::format("{:.4f}", *recall));
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

// --test-batches bounds the part of the test split each run is scored on: the row's test metrics
// are the task's evaluation of that many batches, fewer tokens than the whole split.
TEST(Compare, TestBatchesBoundTheTestSplit) {
  TempDir dir;
  const std::string data = dir / "data";
  prepare_pattern_corpus(data);
  const std::string config = write_config(
      dir, "soft", {{"type", "language_modeling"}, {"corpus", "pattern"}, {"seq", 16}}, kSoftmax);
  CompareOptions o = tiny_options(dir, data);
  o.steps = 2;
  o.test_batches = 1;
  const std::vector<CompareRow> rows = compare({config}, o);
  ASSERT_EQ(rows.size(), 1u);
  TrainConfig c = TrainConfig::from_file(config);
  c.data_dir = data;
  RunParts parts = build_run(c);
  LoadedModel l = load_model(o.out_dir + "/soft/checkpoint.safetensors");
  const Metrics one = parts.task->evaluate(*l.model, "test", 1);
  const Metrics all = parts.task->evaluate(*l.model, "test", 0);
  ASSERT_NE(rows[0].test.find("tokens"), nullptr);
  EXPECT_EQ(*rows[0].test.find("tokens"), *one.find("tokens"));
  EXPECT_EQ(*rows[0].test.find("bits/byte"), *one.find("bits/byte"));
  EXPECT_LT(*one.find("tokens"), *all.find("tokens"));
}

// The documented comparisons' configs are valid, and each CRT choice differs from the default
// CRT config (configs/crt/crt_l35.json) in its model's one switch alone.
TEST(Compare, ComparisonConfigsAreValidAndDifferInOneSwitch) {
  const std::string root = std::string(RILL_SOURCE_DIR) + "/configs/";
  for (const auto& entry : std::filesystem::directory_iterator(root + "crt"))
    TrainConfig::from_json(json::parse(read_all(entry.path().string()))).validate();
  for (const auto& entry : std::filesystem::directory_iterator(root + "block_recurrent"))
    TrainConfig::from_json(json::parse(read_all(entry.path().string()))).validate();
  const json base = json::parse(read_all(root + "crt/crt_l35.json"));
  const std::pair<const char*, json> choices[] = {
      {"crt_l35_write", {{"summary", "write"}}}, {"crt_l35_rnn", {{"summary", "rnn"}}},
      {"crt_l35_bptt1", {{"bptt_segments", 1}}}, {"crt_l35_learned", {{"positions", "learned"}}},
      {"crt_nc_l35", {{"memory", "nc_gru"}}},    {"crt_l35_cleared", {{"clear_memory", true}}}};
  for (const auto& [name, change] : choices) {
    SCOPED_TRACE(name);
    json variant = json::parse(read_all(root + "crt/" + name + ".json"));
    json expected = base;
    expected["model"].update(change);
    expected["out_dir"] = variant["out_dir"];
    EXPECT_EQ(variant, expected);
  }
}
