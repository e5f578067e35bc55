// Sweeps of actor-critic runs over models, environments and seeds (see rl_sweep.h).
#include "rill/rl/rl_sweep.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>

#include "rill/core/error.h"
#include "rill/io/json_fields.h"
#include "rill/io/json_file.h"
#include "rill/rl/env.h"
#include "rill/train/metrics.h"

namespace rill::rl {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string mean_sd(const std::vector<double>& v, const char* f) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  for (double x : v) s += (x - m) * (x - m);
  const std::string mean = fmt::format(fmt::runtime(f), m);
  if (v.size() < 2) return mean;
  return mean + " ± " + fmt::format(fmt::runtime(f), std::sqrt(s / double(v.size() - 1)));
}

std::string bytes_text(double b) {
  if (b >= 1024 * 1024) return fmt::format("{:.2f} MiB", b / 1024 / 1024);
  if (b >= 1024) return fmt::format("{:.1f} KiB", b / 1024);
  return fmt::format("{:.0f} B", b);
}

}  // namespace

RlSweep RlSweep::from_json(const json& j) {
  JsonFields f(j, "the rl sweep");
  RlSweep s;
  if (const json* b = f.raw("base")) {
    RILL_CHECK(b->is_object(), "[config] the rl sweep: \"base\" must be an object");
    RILL_CHECK(!b->contains("env") && !b->contains("model") && !b->contains("seed") &&
                   !b->contains("out_dir"),
               "[config] the rl sweep: \"base\" may not set env, model, seed or out_dir (the "
               "sweep sets them per run)");
    s.base = *b;
  }
  const json* models = f.raw("models");
  RILL_CHECK(models && models->is_object() && !models->empty(),
             "[config] the rl sweep needs \"models\": {{\"name\": model config or path, ...}}");
  for (const auto& [name, m] : models->items()) {
    const bool plain =
        !name.empty() && name != "." && name != ".." &&
        std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
        });
    RILL_CHECK(plain,
               "[config] the rl sweep: model name \"{}\" names its runs' folder: use letters, "
               "digits, '_', '-' and '.'",
               name);
    RILL_CHECK(m.is_object() || m.is_string(),
               "[config] the rl sweep: model \"{}\" must be a model config or a path", name);
    json cfg = m.is_string() ? read_json_file(m.get<std::string>(), "the model config") : m;
    if (cfg.contains("model")) cfg = json(cfg["model"]);
    s.models.emplace_back(name, cfg);
  }
  if (const json* o = f.raw("model_overrides")) {
    RILL_CHECK(o->is_object(), "[config] the rl sweep: \"model_overrides\" must be an object");
    for (const auto& [name, v] : o->items()) {
      const bool known = std::any_of(s.models.begin(), s.models.end(),
                                     [&](const auto& m) { return m.first == name; });
      RILL_CHECK(known && v.is_object(),
                 "[config] the rl sweep: \"model_overrides\" names \"{}\", which is not one of "
                 "the models, or does not give an object",
                 name);
    }
    s.overrides = *o;
  }
  const json* envs = f.raw("envs");
  RILL_CHECK(envs && envs->is_array() && !envs->empty(),
             "[config] the rl sweep needs \"envs\": [environment config, ...]");
  for (const json& e : *envs) s.envs.push_back(e);
  f.get("seeds", s.seeds);
  if (s.seeds.empty()) s.seeds = {1};
  f.get("out_dir", s.out_dir);
  f.finish();
  for (size_t e = 0; e < s.envs.size(); ++e)
    for (size_t m = 0; m < s.models.size(); ++m) s.run_config(e, m, s.seeds[0]);
  return s;
}

RlConfig RlSweep::run_config(size_t env, size_t model, uint64_t seed) const {
  json j = base;
  const std::string& name = models[model].first;
  if (overrides.contains(name))
    for (const auto& [k, v] : overrides[name].items()) j[k] = v;
  j["env"] = envs[env];
  j["model"] = models[model].second;
  j["seed"] = seed;
  j["out_dir"] = fmt::format("{}/env{}/{}/seed{}", out_dir, env, name, seed);
  return RlConfig::from_json(j);
}

std::vector<RlSweepRow> run_rl_sweep(const RlSweep& sweep, const RlEvents& events) {
  std::vector<RlSweepRow> rows;
  for (size_t e = 0; e < sweep.envs.size(); ++e) {
    const EnvSpec spec = make_env(sweep.envs[e])->spec();
    const std::string& env_name = spec.name;
    for (size_t m = 0; m < sweep.models.size(); ++m)
      for (uint64_t seed : sweep.seeds) {
        const RlConfig cfg = sweep.run_config(e, m, seed);
        RlSweepRow row;
        row.env = env_name, row.model = sweep.models[m].first, row.seed = seed;
        row.optimal_return = spec.optimal_return, row.memoryless_return = spec.memoryless_return;
        row.has_success = spec.has_success, row.out_dir = cfg.out_dir;
        const std::string done = cfg.out_dir + "/result.json", used = cfg.out_dir + "/config.json";
        if (fs::exists(done) && fs::exists(used) &&
            read_json_file(used, "a run's config") == cfg.to_json()) {
          const RlResult r = RlResult::from_json(read_json_file(done, "a run's result"));
          if (!r.interrupted) {
            row.result = r;
            if (events.on_message)
              events.on_message(fmt::format("{} / {} / seed {}: done before ({})", env_name,
                                            row.model, seed, done));
            rows.push_back(row);
            continue;
          }
        }
        if (events.on_message)
          events.on_message(fmt::format("=== {} / {} / seed {}", env_name, row.model, seed));
        row.result = train_rl(cfg, false, events);
        rows.push_back(row);
        if (row.result.interrupted) return rows;
      }
  }
  return rows;
}

std::string rl_sweep_markdown(const std::vector<RlSweepRow>& rows) {
  // Rows grouped by (environment, model) in the order they ran.
  std::vector<std::pair<std::string, std::string>> order;
  std::map<std::pair<std::string, std::string>, std::vector<const RlSweepRow*>> groups;
  for (const auto& r : rows) {
    const auto key = std::make_pair(r.env, r.model);
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&r);
  }
  std::string out =
      "| environment | model | params | state/lane | step µs | seeds | env steps | final return "
      "| final success | eval return | eval success | solved | steps to solve (median) | env "
      "steps/s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& key : order) {
    const auto& g = groups[key];
    std::vector<double> fr, fs_, er, es, us, sps, solve;
    for (const RlSweepRow* r : g) {
      fr.push_back(r->result.final_return);
      fs_.push_back(r->result.final_success);
      er.push_back(r->result.eval.mean_return);
      es.push_back(r->result.eval.success);
      us.push_back(r->result.step_us);
      sps.push_back(r->result.env_steps_per_s);
      if (r->result.steps_to_solve >= 0) solve.push_back(double(r->result.steps_to_solve));
    }
    std::sort(solve.begin(), solve.end());
    std::sort(us.begin(), us.end());
    const std::string median_solve =
        solve.empty() ? "-" : fmt::format("{:.0f}", solve[solve.size() / 2]);
    out += fmt::format(
        "| {} | {} | {} | {} | {:.0f} | {} | {} | {} | {} | {} | {} | {}/{} | {} | {} |\n",
        key.first, key.second, g[0]->result.parameters,
        bytes_text(double(g[0]->result.state_bytes)), us[us.size() / 2], g.size(),
        g[0]->result.env_steps, mean_sd(fr, "{:.2f}"),
        g[0]->has_success ? mean_sd(fs_, "{:.2f}") : "-", mean_sd(er, "{:.2f}"),
        g[0]->has_success ? mean_sd(es, "{:.2f}") : "-", solve.size(), g.size(), median_solve,
        mean_sd(sps, "{:.0f}"));
  }
  std::string refs;
  for (const auto& key : order) {
    const RlSweepRow& r = *groups[key][0];
    if (key != order[0] && key.first == (&key)[-1].first) continue;
    auto text = [](double v) { return std::isfinite(v) ? fmt::format("{:.3f}", v) : "unknown"; };
    refs += fmt::format("- {}: optimal return {}, best memoryless return {}\n", r.env,
                        text(r.optimal_return), text(r.memoryless_return));
  }
  return out + "\n" + refs;
}

void write_rl_sweep_plot(const std::string& path, const std::vector<RlSweepRow>& rows) {
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::vector<Plot> plots;
  std::map<std::string, size_t> panel;
  std::map<std::string, size_t> model_color;
  for (const auto& r : rows) {
    if (!panel.count(r.env)) {
      panel[r.env] = plots.size();
      plots.push_back({r.env, "environment steps", "mean return (last episodes)", {}});
    }
    if (!model_color.count(r.model)) model_color[r.model] = model_color.size();
    Curve c{fmt::format("{} s{}", r.model, r.seed), colors[model_color[r.model] % 10], {}};
    c.points = points_from_log(r.out_dir + "/metrics.jsonl", "env_steps", "mean_return");
    plots[panel[r.env]].curves.push_back(c);
  }
  write_svg_plots(path, plots);
}

}  // namespace rill::rl
