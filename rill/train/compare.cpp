// The comparison command's library half: train each config under the same time budget (on each
// data set of a list), then measure state sizes, the step time and the test metrics.
#include "rill/train/compare.h"

#include <omp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include "rill/data/dataset.h"
#include "rill/train/checkpoint.h"
#include "rill/train/generate.h"

namespace rill {

namespace fs = std::filesystem;

namespace {

std::string bytes_text(size_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  if (b < (1u << 20)) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{:.1f} MiB", b / double(1 << 20));
}

// Seconds per step of the step form (f32 weights), one stream, after a 64-step prompt and 16
// warm-up steps. A token model generates through its tight path (greedy sampling, so the
// sampler's sort is not what is timed); a model that reads real-valued features takes its tensor
// step on standard-normal vectors (the tasks standardise their inputs), drawn before the clock.
double step_seconds(SequenceModel& model, int64_t steps, int threads) {
  RILL_CHECK(steps > 0, "[compare] the number of timed steps must be positive, got {}", steps);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  constexpr int64_t kPrompt = 64, kWarm = 16;
  double sec = 0;
  if (model.io().vocab > 0) {
    std::vector<int64_t> prompt(kPrompt);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int64_t(i * 7 % model.io().vocab);
    Stream s = start_stream(model, prompt, 1);
    SamplerOptions greedy;
    greedy.temperature = 0;
    auto stepper = model.make_stepper(1, WeightFormat::f32);
    continue_stream(model, s, kWarm, greedy, {}, {}, stepper.get());  // warm the caches
    const auto t0 = std::chrono::steady_clock::now();
    continue_stream(model, s, steps, greedy, {}, {}, stepper.get());
    sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } else {
    const int64_t f = model.io().in_features;
    RILL_CHECK(f > 0, "[compare] the model reads neither tokens nor features: nothing to step");
    NoGradGuard no_grad;
    const Tensor x = Tensor::randn({kPrompt + kWarm + steps, f}, 7);
    State state = model.init_state(1);
    model.forward(x.narrow(0, 0, kPrompt).reshape({1, kPrompt, f}), &state);
    for (int64_t t = kPrompt; t < kPrompt + kWarm; ++t) model.step(x.narrow(0, t, 1), state);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t t = kPrompt + kWarm; t < kPrompt + kWarm + steps; ++t)
      model.step(x.narrow(0, t, 1), state);
    sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  omp_set_num_threads(saved);
  return sec / double(steps);
}

// The field of a task's config that names its data, and the kind of data set it names.
struct DataField {
  const char* field;
  data::DataKind kind;
};
std::optional<DataField> data_field(const std::string& task_type) {
  if (task_type == "language_modeling") return DataField{"corpus", data::DataKind::corpus};
  if (task_type == "classification") return DataField{"dataset", data::DataKind::labelled};
  if (task_type == "forecasting") return DataField{"dataset", data::DataKind::series};
  return std::nullopt;
}

// "a series", "a labelled set", "a corpus", with the registered names of that kind.
std::string kind_text(data::DataKind kind, bool with_names) {
  std::string s = kind == data::DataKind::series     ? "a series"
                  : kind == data::DataKind::labelled ? "a labelled set"
                                                     : "a corpus";
  if (!with_names) return s;
  std::string names;
  for (const data::DataEntry& e : data::data_entries())
    if (e.kind == kind) names += (names.empty() ? "" : ", ") + e.name;
  return names.empty() ? s : fmt::format("{} ({})", s, names);
}

// The run of `run` on data set `dataset`: its task's data field replaced, once the data set is
// known to be prepared and of the kind that task reads (errors name the data set and the run).
NamedRun on_dataset(const NamedRun& run, const std::string& dataset, const std::string& data_dir) {
  const std::string type = run.config.task.value("type", "");
  const std::optional<DataField> field = data_field(type);
  RILL_CHECK(field.has_value(),
             "[compare] {} trains a {} task, which reads no data set by name: a list of data "
             "sets needs language_modeling, classification or forecasting configs",
             run.name, type.empty() ? "\"\"" : type);
  const data::DataStatus st = data::data_status(dataset, data_dir);
  RILL_CHECK(st.kind.has_value(),
             "[compare] {} is neither a known data set nor prepared in {}: {} trains a {} task, "
             "which reads {}",
             dataset, data::dir_for_message(data_dir), run.name, type,
             kind_text(field->kind, true));
  RILL_CHECK(*st.kind == field->kind, "[compare] {} is {}, but {} trains a {} task, which reads {}",
             dataset, kind_text(*st.kind, false), run.name, type, kind_text(field->kind, true));
  RILL_CHECK(st.prepared,
             "[compare] {} (for {}) is not prepared in {}: run `rill data {} --data-dir {}`",
             dataset, run.name, data::dir_for_message(data_dir), dataset,
             data_dir.empty() ? "." : data_dir);
  NamedRun r = run;
  r.config.task[field->field] = dataset;
  return r;
}

// Every config on every data set: all (data set, config) pairs checked first, then one
// comparison per data set with its runs under out_dir/<data set>.
std::vector<CompareRow> compare_datasets(const std::vector<NamedRun>& runs,
                                         const CompareOptions& options, const TrainEvents& events) {
  std::vector<std::vector<NamedRun>> per_set;
  for (size_t i = 0; i < options.datasets.size(); ++i) {
    const std::string& d = options.datasets[i];
    RILL_CHECK(!d.empty(), "[compare] data set {} of the list is an empty name", i + 1);
    for (size_t j = 0; j < i; ++j)
      RILL_CHECK(options.datasets[j] != d,
                 "[compare] {} is listed twice among the data sets (its runs would collide)", d);
    std::vector<NamedRun> set;
    for (const NamedRun& run : runs)
      set.push_back(
          on_dataset(run, d, options.data_dir.empty() ? run.config.data_dir : options.data_dir));
    per_set.push_back(std::move(set));
  }
  // Each task built once (and dropped) before any training, so that a data set a task cannot
  // read (a series too short for the windows, too few examples for a batch) stops the sweep now.
  std::set<std::string> built;
  for (size_t i = 0; i < per_set.size(); ++i)
    for (const NamedRun& run : per_set[i]) {
      const TrainConfig& c = run.config;
      const std::string data_dir = options.data_dir.empty() ? c.data_dir : options.data_dir;
      const std::string key = fmt::format("{} {} {} {}", c.task.dump(), c.batch, c.seed, data_dir);
      if (!built.insert(key).second) continue;
      try {
        make_task(c.task, TaskContext{data_dir, c.batch, c.seed});
      } catch (const Error& e) {
        fail("[compare] {} on {}: {}", run.name, options.datasets[i], e.what());
      }
    }
  std::vector<CompareRow> rows;
  for (size_t i = 0; i < options.datasets.size(); ++i) {
    const std::string& d = options.datasets[i];
    CompareOptions o = options;
    o.datasets.clear();
    o.out_dir = (fs::path(options.out_dir) / d).string();
    if (events.on_message)
      events.on_message(
          fmt::format("[compare] data set {} ({} of {})", d, i + 1, options.datasets.size()));
    for (CompareRow& r : compare_runs(std::move(per_set[i]), o, events)) {
      r.dataset = d;
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace

std::vector<uint64_t> parse_seeds(const std::string& text) {
  std::vector<uint64_t> seeds;
  size_t begin = 0;
  for (size_t item = 1;; ++item) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string s = text.substr(begin, end - begin);
    RILL_CHECK(!s.empty(), "[compare] seed {} of the list \"{}\" is empty", item, text);
    RILL_CHECK(
        s.front() != '-',
        "[compare] seed {} of the list \"{}\" is negative ({}): seeds are whole numbers from 0",
        item, text, s);
    uint64_t v = 0;
    const auto [at, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    RILL_CHECK(ec == std::errc() && at == s.data() + s.size(),
               "[compare] seed {} of the list \"{}\" ({}) is not a whole number from 0 to {}", item,
               text, s, std::numeric_limits<uint64_t>::max());
    RILL_CHECK(std::find(seeds.begin(), seeds.end(), v) == seeds.end(),
               "[compare] seed {} is listed twice in \"{}\" (its runs would collide)", v, text);
    seeds.push_back(v);
    if (end == text.size()) break;
    begin = end + 1;
  }
  return seeds;
}

std::vector<CompareRow> compare(const std::vector<std::string>& paths,
                                const CompareOptions& options, const TrainEvents& events) {
  RILL_CHECK(!paths.empty(), "[compare] give at least one config");
  std::vector<NamedRun> runs;
  for (const std::string& p : paths)
    runs.push_back({fs::path(p).stem().string(), TrainConfig::from_file(p)});
  return compare_runs(std::move(runs), options, events);
}

std::vector<CompareRow> compare_runs(std::vector<NamedRun> runs, const CompareOptions& options,
                                     const TrainEvents& events) {
  RILL_CHECK(!runs.empty(), "[compare] give at least one config");
  RILL_CHECK(options.timed_steps > 0 && options.step_threads > 0,
             "[compare] the timed steps and their threads must be positive, got {} and {}",
             options.timed_steps, options.step_threads);
  RILL_CHECK(options.seconds > 0 || (options.seconds == 0 && options.steps > 0),
             "[compare] the budget must be positive seconds, or 0 seconds with a step count; "
             "got {} s and {} steps",
             options.seconds, options.steps);
  RILL_CHECK(options.steps >= 0,
             "[compare] the step count must be 0 (the time decides) or "
             "positive, got {}",
             options.steps);
  for (size_t i = 0; i < options.seeds.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      RILL_CHECK(options.seeds[j] != options.seeds[i],
                 "[compare] seed {} is listed twice (its runs would collide)", options.seeds[i]);
  if (!options.datasets.empty()) return compare_datasets(runs, options, events);
  std::vector<TrainConfig> configs;
  std::vector<std::string> names;
  for (NamedRun& run : runs) {
    TrainConfig& c = run.config;
    const std::string& name = run.name;
    for (const std::string& n : names)
      RILL_CHECK(n != name, "[compare] two configs are named {} (their runs would collide)", name);
    if (!options.data_dir.empty()) c.data_dir = options.data_dir;
    c.out_dir = (fs::path(options.out_dir) / name).string();
    c.time_limit_s = options.seconds;
    if (options.steps > 0) {
      c.steps = options.steps;
      // A short step budget keeps a tenth of itself for the warm-up at most.
      c.warmup = std::min(c.warmup, options.steps / 10);
    } else {
      c.steps = std::max<int64_t>(c.steps, 1'000'000);  // the budget decides, not the step count
    }
    c.validate();
    // One task on one data set; how each model carries its state (reset_every) may differ, and
    // each is evaluated the way it was trained.
    auto data_of = [](const TrainConfig& t) {
      auto field = [&](const char* k) { return t.task.contains(k) ? t.task[k] : nlohmann::json(); };
      return nlohmann::json{{"type", field("type")},
                            {"corpus", field("corpus")},
                            {"dataset", field("dataset")},
                            {"corridor", field("corridor")},
                            {"data_dir", t.data_dir}};
    };
    if (!configs.empty())
      RILL_CHECK(data_of(c) == data_of(configs.front()),
                 "[compare] {} has task {} but {} has {}: a comparison needs one task and data",
                 name, data_of(c).dump(), names.front(), data_of(configs.front()).dump());
    configs.push_back(c);
    names.push_back(name);
  }
  // With seeds: each config once per seed, one after another, under <config>/seed<N>.
  if (!options.seeds.empty()) {
    std::vector<TrainConfig> per_seed;
    std::vector<std::string> per_seed_names;
    for (size_t i = 0; i < configs.size(); ++i)
      for (uint64_t seed : options.seeds) {
        TrainConfig c = configs[i];
        c.seed = seed;
        c.out_dir = (fs::path(c.out_dir) / fmt::format("seed{}", seed)).string();
        per_seed.push_back(std::move(c));
        per_seed_names.push_back(names[i]);
      }
    configs = std::move(per_seed);
    names = std::move(per_seed_names);
  }
  std::vector<CompareRow> rows;
  for (size_t i = 0; i < configs.size(); ++i) {
    if (events.on_message) {
      const std::string run =
          options.seeds.empty() ? names[i] : fmt::format("{} seed {}", names[i], configs[i].seed);
      events.on_message(options.steps > 0 ? fmt::format("[compare] {} ({} of {}), {} steps", run,
                                                        i + 1, configs.size(), options.steps)
                                          : fmt::format("[compare] {} ({} of {}), {:.0f} s", run,
                                                        i + 1, configs.size(), options.seconds));
    }
    const auto t0 = std::chrono::steady_clock::now();
    TrainResult r = train(configs[i], false, events);
    CompareRow row;
    row.name = names[i];
    row.seed = configs[i].seed;
    row.steps = r.steps;
    row.train_per_s = r.items_per_s;
    row.unit = r.unit;
    row.valid = r.valid;
    LoadedModel l = load_model(configs[i].out_dir + "/checkpoint.safetensors");
    RunParts parts = build_run(configs[i]);  // the task, to evaluate the test split
    row.test = parts.task->evaluate(*l.model, "test", options.test_batches);
    // The context of one training segment: the length of a training batch's sequences.
    row.flops_context = parts.task->next_batch().inputs.size(1);
    row.flops_per_token = l.model->info(row.flops_context).flops_per_token;
    const ModelInfo at1k = l.model->info(1024), at64k = l.model->info(65536);
    row.parameters = at1k.parameters;
    row.state_1k = at1k.state_bytes;
    row.state_64k = at64k.state_bytes;
    row.constant_state = at64k.constant_state;
    row.step_us = 1e6 * step_seconds(*l.model, options.timed_steps, options.step_threads);
    row.train_seconds = r.seconds;
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rows.push_back(row);
  }
  return rows;
}

namespace {

// The naive forecasts a task may score beside the model (forecasting.h), as metric names
// "<key>_<metric>", and their names in the table.
constexpr std::pair<const char*, const char*> kBaselines[] = {{"last_value", "naive last value"},
                                                              {"seasonal_naive", "seasonal naive"}};
// What an evaluation reports of the split's size beside its metrics (classification's examples,
// forecasting's windows, a language model's tokens, and counts of a part of them such as a
// language model's "recall tokens"): no column of the table.
constexpr const char* kSizes[] = {"examples", "windows", "tokens"};

bool is_baseline(const std::string& metric) {
  for (const auto& [key, label] : kBaselines)
    if (metric.starts_with(std::string(key) + "_")) return true;
  return false;
}

bool is_size(const std::string& metric) {
  for (const char* s : kSizes)
    if (metric == s || metric.ends_with(std::string(" ") + s)) return true;
  return false;
}

// "8.5M": three significant figures at most, with a thousands prefix.
std::string flops_text(double f) {
  if (f < 999.5) return fmt::format("{:.0f}", f);
  constexpr const char* kPrefix[] = {"K", "M", "G", "T", "P"};
  size_t p = 0;
  f /= 1e3;
  while (f >= 999.95 && p + 1 < std::size(kPrefix)) f /= 1e3, ++p;
  return fmt::format("{:.{}f}{}", f, f < 99.95 ? 1 : 0, kPrefix[p]);
}

// One value at `precision` decimals, or several as "mean ± sd" (the sample standard deviation);
// "-" for none.
std::string stat_text(const std::vector<double>& v, int precision) {
  if (v.empty()) return "-";
  if (v.size() == 1) return fmt::format("{:.{}f}", v[0], precision);
  double mean = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  const double sd = std::sqrt(ss / double(v.size() - 1));
  return fmt::format("{:.{}f} ± {:.{}f}", mean, precision, sd, precision);
}

std::string value_text(const double* v) { return v ? fmt::format("{:.4f}", *v) : "-"; }

std::string table_line(const std::vector<std::string>& cells) {
  std::string s = "|";
  for (const std::string& c : cells) s += " " + c + " |";
  return s + "\n";
}

}  // namespace

std::string compare_table(const std::vector<CompareRow>& rows) {
  if (rows.empty()) return "";
  const CompareRow& first = rows.front();
  const std::string metric = first.valid.primary;
  // The test metrics shown: the headline, then every other one a row reports, as they first
  // come, less the split sizes and the naive forecasts' scores (rows of their own below).
  std::vector<std::string> shown{metric};
  for (const CompareRow& r : rows)
    for (const auto& [name, v] : r.test.values)
      if (!is_size(name) && !is_baseline(name) &&
          std::find(shown.begin(), shown.end(), name) == shown.end())
        shown.push_back(name);
  bool sets = false;
  std::vector<std::string> order;  // the data sets, as they first come
  for (const CompareRow& r : rows) {
    sets = sets || !r.dataset.empty();
    if (std::find(order.begin(), order.end(), r.dataset) == order.end()) order.push_back(r.dataset);
  }
  // The rows of each (data set, config), as they first come: one each, or one per seed.
  std::vector<std::vector<const CompareRow*>> groups;
  for (const CompareRow& r : rows) {
    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& g) {
      return g.front()->dataset == r.dataset && g.front()->name == r.name;
    });
    if (g == groups.end())
      groups.push_back({&r});
    else
      g->push_back(&r);
  }
  bool seeds = false;
  for (const auto& g : groups) seeds = seeds || g.size() > 1;
  // The FLOPs' context in the head when every row trained with the same one, else in each cell.
  bool one_context = true;
  for (const CompareRow& r : rows)
    one_context = one_context && r.flops_context == first.flops_context;

  // The head, with `extra` (the seed count, or the seed) after the config when there are seeds.
  auto head_of = [&](const char* extra) {
    std::vector<std::string> head;
    if (sets) head.push_back("data set");
    head.push_back("config");
    if (seeds) head.push_back(extra);
    head.push_back("parameters");
    head.push_back(one_context ? fmt::format("FLOPs/token @{} (train seq)", first.flops_context)
                               : std::string("FLOPs/token @train seq"));
    for (std::string h : {"state @1k", "state @64k", "steps", "train s"}) head.push_back(h);
    head.push_back(fmt::format("train {}/s", first.unit == "tokens" ? "tokens" : "seq"));
    head.push_back("step µs");
    head.push_back("valid " + metric);
    for (const std::string& m : shown) head.push_back("test " + m);
    return head;
  };
  auto head_text = [&](const std::vector<std::string>& head) {
    std::string s = table_line(head) + "|";
    for (size_t i = 0; i < head.size(); ++i) s += "---|";
    return s + "\n";
  };
  // The line of the runs `g` of one config (on one data set): the model's own numbers from the
  // first (every seed builds the same model), the measured ones over all.
  auto line_of = [&](const std::vector<const CompareRow*>& g, const std::string& extra) {
    const CompareRow& r = *g.front();
    auto over = [&](auto value) {
      std::vector<double> v;
      for (const CompareRow* x : g)
        if (const std::optional<double> y = value(*x)) v.push_back(*y);
      return v;
    };
    std::vector<std::string> c;
    if (sets) c.push_back(r.dataset);
    c.push_back(r.name);
    if (seeds) c.push_back(extra);
    c.push_back(fmt::format("{:.2f} M", r.parameters / 1e6));
    c.push_back(flops_text(r.flops_per_token) +
                (one_context ? "" : fmt::format(" @{}", r.flops_context)));
    c.push_back(bytes_text(r.state_1k));
    c.push_back(bytes_text(r.state_64k) + (r.constant_state ? "" : " (grows)"));
    bool same_steps = true;
    for (const CompareRow* x : g) same_steps = same_steps && x->steps == r.steps;
    c.push_back(same_steps ? fmt::format("{}", r.steps)
                           : stat_text(over([](const CompareRow& x) -> std::optional<double> {
                                         return double(x.steps);
                                       }),
                                       0));
    c.push_back(stat_text(
        over([](const CompareRow& x) -> std::optional<double> { return x.train_seconds; }), 1));
    c.push_back(stat_text(
        over([](const CompareRow& x) -> std::optional<double> { return x.train_per_s; }), 0));
    c.push_back(stat_text(over([](const CompareRow& x) -> std::optional<double> {
                            if (x.step_us > 0) return x.step_us;
                            return std::nullopt;
                          }),
                          0));
    auto metric_of = [&](const Metrics CompareRow::*split, const std::string& m) {
      return stat_text(over([&](const CompareRow& x) -> std::optional<double> {
                         if (const double* v = (x.*split).find(m)) return *v;
                         return std::nullopt;
                       }),
                       4);
    };
    c.push_back(metric_of(&CompareRow::valid, metric));
    for (const std::string& m : shown) c.push_back(metric_of(&CompareRow::test, m));
    return table_line(c);
  };

  const std::vector<std::string> head = head_of("seeds");
  std::string s = head_text(head);
  // The columns before the metrics that a baseline's row leaves blank.
  const size_t blanks = head.size() - (sets ? 2 : 1) - 1 - shown.size();
  for (const std::string& set : order) {
    std::vector<const CompareRow*> group;
    for (const CompareRow& r : rows)
      if (r.dataset == set) group.push_back(&r);
    for (const auto& g : groups)
      if (g.front()->dataset == set) s += line_of(g, fmt::format("{}", g.size()));
    // A row per baseline of this data set; configs whose windows differ (another input length)
    // score their baselines on other windows, so each distinct score gets its own row.
    for (const auto& [key, label] : kBaselines) {
      std::vector<std::pair<std::vector<std::string>, std::string>> seen;  // cells, config
      for (const CompareRow* r : group) {
        std::vector<std::string> v{value_text(r->valid.find(fmt::format("{}_{}", key, metric)))};
        bool any = false;
        for (const std::string& m : shown) {
          const double* x = r->test.find(fmt::format("{}_{}", key, m));
          any = any || x;
          v.push_back(value_text(x));
        }
        if (!any) continue;
        bool repeat = false;
        for (const auto& [cells, name] : seen) repeat = repeat || cells == v;
        if (!repeat) seen.push_back({v, r->name});
      }
      for (const auto& [cells, name] : seen) {
        std::vector<std::string> c;
        if (sets) c.push_back(set);
        c.push_back(seen.size() > 1 ? fmt::format("{} (windows of {})", label, name) : label);
        for (size_t k = 0; k < blanks; ++k) c.push_back("-");
        c.insert(c.end(), cells.begin(), cells.end());
        s += table_line(c);
      }
    }
  }
  if (!seeds) return s;
  // Every seed's run, with its raw values.
  s += "\nEvery seed's run:\n\n" + head_text(head_of("seed"));
  for (const auto& g : groups)
    for (const CompareRow* r : g) s += line_of({r}, fmt::format("{}", r->seed));
  return s;
}

}  // namespace rill
