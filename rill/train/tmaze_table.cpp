// The T-Maze table: one comparison per corridor length, gathered into one markdown table.
#include "rill/train/tmaze_table.h"

#include <filesystem>
#include <map>

#include "rill/data/tmaze.h"
#include "rill/tasks/tmaze.h"

namespace rill {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The config's T-Maze settings, or the defaults when it trains on another task.
TMazeConfig tmaze_settings(const TrainConfig& c, const std::string& name,
                           const TrainEvents& events) {
  const std::string type = c.task.value("type", "");
  const bool classification_spelling =
      type == "classification" && c.task.contains("dataset") && c.task["dataset"] == "tmaze";
  if (type != "tmaze" && !classification_spelling) {
    if (events.on_message)
      events.on_message(fmt::format("[tmaze] {}: its task ({}) is replaced by the T-Maze task",
                                    name, c.task.dump()));
    return {};
  }
  json t = c.task;
  t.erase("dataset");
  return TMazeConfig::from_json(t);
}

}  // namespace

std::vector<TMazeCell> tmaze_table(const std::vector<std::string>& paths,
                                   const TMazeTableOptions& options, const TrainEvents& events) {
  RILL_CHECK(!paths.empty(), "[tmaze] give at least one config");
  RILL_CHECK(!options.corridors.empty(), "[tmaze] give at least one corridor length");
  for (int64_t n : options.corridors) data::check_tmaze_corridor(n);  // all, before any training
  RILL_CHECK(options.valid_episodes >= 0 && options.test_episodes >= 0,
             "[tmaze] episode counts must be 0 (the config's) or positive, got valid {} test {}",
             options.valid_episodes, options.test_episodes);
  std::vector<NamedRun> base;
  std::vector<TMazeConfig> settings;
  for (const std::string& p : paths) {
    NamedRun r{fs::path(p).stem().string(), TrainConfig::from_file(p)};
    settings.push_back(tmaze_settings(r.config, r.name, events));
    base.push_back(std::move(r));
  }
  std::vector<TMazeCell> cells;
  for (int64_t corridor : options.corridors) {
    std::vector<NamedRun> runs = base;
    for (size_t i = 0; i < runs.size(); ++i) {
      TMazeConfig t = settings[i];
      t.corridor = corridor;
      if (options.valid_episodes > 0) t.valid_episodes = options.valid_episodes;
      if (options.test_episodes > 0) t.test_episodes = options.test_episodes;
      runs[i].config.task = t.to_json();
    }
    CompareOptions o = options.compare;
    o.out_dir = (fs::path(options.compare.out_dir) / fmt::format("corridor-{}", corridor)).string();
    if (events.on_message) events.on_message(fmt::format("[tmaze] corridor {}", corridor));
    for (const CompareRow& r : compare_runs(runs, o, events))
      cells.push_back({r.name, corridor, r.test.headline(),
                       static_cast<int64_t>(r.test.value("examples")), r.steps, r.train_seconds,
                       r.seconds});
  }
  return cells;
}

std::string tmaze_markdown(const std::vector<TMazeCell>& cells) {
  std::vector<std::string> names;
  std::vector<int64_t> corridors;
  std::map<std::pair<std::string, int64_t>, const TMazeCell*> at;
  for (const TMazeCell& c : cells) {
    if (std::find(names.begin(), names.end(), c.name) == names.end()) names.push_back(c.name);
    if (std::find(corridors.begin(), corridors.end(), c.corridor) == corridors.end())
      corridors.push_back(c.corridor);
    at[{c.name, c.corridor}] = &c;
  }
  auto header = [&](const char* first) {
    std::string s = fmt::format("| {} |", first);
    for (int64_t n : corridors) s += fmt::format(" {} |", n);
    s += "\n|---|";
    for (size_t i = 0; i < corridors.size(); ++i) s += "---|";
    return s + "\n";
  };
  std::string s =
      "Success rate (test episodes decided correctly; chance 0.5) by corridor length\n\n";
  s += header("config \\ corridor");
  for (const std::string& name : names) {
    s += fmt::format("| {} |", name);
    for (int64_t n : corridors) {
      auto it = at.find({name, n});
      s += it == at.end() ? " - |" : fmt::format(" {:.3f} |", it->second->success);
    }
    s += "\n";
  }
  s += "\nSteps trained, training seconds / seconds of the whole cell (training, test split)\n\n";
  s += header("config \\ corridor");
  for (const std::string& name : names) {
    s += fmt::format("| {} |", name);
    for (int64_t n : corridors) {
      auto it = at.find({name, n});
      s += it == at.end() ? " - |"
                          : fmt::format(" {} steps, {:.0f} / {:.0f} s |", it->second->steps,
                                        it->second->train_seconds, it->second->seconds);
    }
    s += "\n";
  }
  if (!cells.empty())
    s += fmt::format("\nTest episodes per cell: {}.\n", cells.front().test_episodes);
  return s;
}

}  // namespace rill
