// The comparison command's library half: train each config under the same time budget, then
// measure state sizes, generation speed and the test metric.
#include "rill/train/compare.h"

#include <omp.h>

#include <chrono>
#include <filesystem>

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

// Tokens per second of the step form (its tight path, f32 weights), one stream, after a short
// prompt (greedy sampling, so the sampler's sort is not what is timed).
double generation_speed(SequenceModel& model, int64_t tokens, int threads) {
  if (model.io().vocab <= 0) return 0;
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  std::vector<int64_t> prompt(64);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int64_t(i * 7 % model.io().vocab);
  Stream s = start_stream(model, prompt, 1);
  SamplerOptions greedy;
  greedy.temperature = 0;
  auto stepper = model.make_stepper(1, WeightFormat::f32);
  continue_stream(model, s, 16, greedy, {}, {}, stepper.get());  // warm the caches
  const auto t0 = std::chrono::steady_clock::now();
  continue_stream(model, s, tokens, greedy, {}, {}, stepper.get());
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  omp_set_num_threads(saved);
  return double(tokens) / sec;
}

}  // namespace

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
  RILL_CHECK(options.seconds > 0 || (options.seconds == 0 && options.steps > 0),
             "[compare] the budget must be positive seconds, or 0 seconds with a step count; "
             "got {} s and {} steps",
             options.seconds, options.steps);
  RILL_CHECK(options.steps >= 0,
             "[compare] the step count must be 0 (the time decides) or "
             "positive, got {}",
             options.steps);
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
  std::vector<CompareRow> rows;
  for (size_t i = 0; i < configs.size(); ++i) {
    if (events.on_message)
      events.on_message(options.steps > 0
                            ? fmt::format("[compare] {} ({} of {}), {} steps", names[i], i + 1,
                                          configs.size(), options.steps)
                            : fmt::format("[compare] {} ({} of {}), {:.0f} s", names[i], i + 1,
                                          configs.size(), options.seconds));
    const auto t0 = std::chrono::steady_clock::now();
    TrainResult r = train(configs[i], false, events);
    CompareRow row;
    row.name = names[i];
    row.steps = r.steps;
    row.train_per_s = r.items_per_s;
    row.unit = r.unit;
    row.valid = r.valid;
    LoadedModel l = load_model(configs[i].out_dir + "/checkpoint.safetensors");
    RunParts parts = build_run(configs[i]);  // the task, to evaluate the test split
    row.test = parts.task->evaluate(*l.model, "test", 0);
    const ModelInfo at1k = l.model->info(1024), at64k = l.model->info(65536);
    row.parameters = at1k.parameters;
    row.state_1k = at1k.state_bytes;
    row.state_64k = at64k.state_bytes;
    row.constant_state = at64k.constant_state;
    row.gen_tokens_per_s = generation_speed(*l.model, options.gen_tokens, options.gen_threads);
    row.train_seconds = r.seconds;
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rows.push_back(row);
  }
  return rows;
}

std::string compare_table(const std::vector<CompareRow>& rows) {
  if (rows.empty()) return "";
  const std::string metric = rows.front().valid.primary;
  std::string s = fmt::format(
      "| config | parameters | state @1k | state @64k | steps | train {}/s | gen tokens/s | "
      "valid {} | test {} |\n|---|---|---|---|---|---|---|---|---|\n",
      rows.front().unit == "tokens" ? "tokens" : "seq", metric, metric);
  for (const CompareRow& r : rows)
    s += fmt::format("| {} | {:.2f} M | {} | {}{} | {} | {:.0f} | {} | {:.4f} | {:.4f} |\n", r.name,
                     r.parameters / 1e6, bytes_text(r.state_1k), bytes_text(r.state_64k),
                     r.constant_state ? "" : " (grows)", r.steps, r.train_per_s,
                     r.gen_tokens_per_s > 0 ? fmt::format("{:.0f}", r.gen_tokens_per_s) : "-",
                     r.valid.headline(), r.test.headline());
  return s;
}

}  // namespace rill
