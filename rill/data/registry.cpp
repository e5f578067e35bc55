// The one listing of corpora, labelled sets and series, and preparing any of them by name
// (see registry.h).
#include "rill/data/registry.h"

#include <chrono>

#include "rill/core/error.h"
#include "rill/data/corpus.h"
#include "rill/data/labelled.h"
#include "rill/data/series.h"
#include "rill/data/windows.h"

namespace rill::data {

namespace {

std::vector<DataEntry> make_entries() {
  std::vector<DataEntry> e;
  for (const CorpusInfo& c : corpora())
    e.push_back({c.name, DataKind::corpus, c.registry, c.package, c.description});
  for (const LabelledInfo& l : labelled_sets())
    e.push_back({l.source.name, DataKind::labelled, l.source.package.registry,
                 l.source.package.package, l.source.description});
  for (const SeriesInfo& s : series_sets())
    e.push_back({s.source.name, DataKind::series, s.source.package.registry,
                 s.source.package.package, s.source.description});
  for (size_t i = 0; i < e.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      RILL_CHECK(e[i].name != e[j].name, "[data] internal: \"{}\" is registered twice", e[i].name);
  return e;
}

const char* opener(DataKind kind) {
  switch (kind) {
    case DataKind::corpus:
      return "open_corpus";
    case DataKind::labelled:
      return "open_labelled";
    case DataKind::series:
      return "open_series";
  }
  return "";
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) b /= 1024, ++u;
  return fmt::format("{:.{}f} {}", b, u == 0 ? 0 : 1, units[u]);
}

std::string times(const DatasetReport& r) {
  return fmt::format("install {:.1f} s, extract {:.1f} s, build {:.1f} s", r.install_seconds,
                     r.extract_seconds, r.build_seconds);
}

}  // namespace

const char* data_kind_name(DataKind kind) {
  switch (kind) {
    case DataKind::corpus:
      return "corpus";
    case DataKind::labelled:
      return "labelled";
    case DataKind::series:
      return "series";
  }
  return "";
}

const std::vector<DataEntry>& data_entries() {
  static const std::vector<DataEntry> entries = make_entries();
  return entries;
}

const DataEntry* find_data(std::string_view name) {
  for (const DataEntry& e : data_entries())
    if (e.name == name) return &e;
  return nullptr;
}

const DataEntry& data_entry(std::string_view name) {
  const DataEntry* e = find_data(name);
  if (e == nullptr) {
    std::vector<std::string> known;
    for (const DataEntry& k : data_entries())
      known.push_back(fmt::format("{} ({})", k.name, data_kind_name(k.kind)));
    fail("[data] unknown data set \"{}\" (known: {})", name, fmt::join(known, ", "));
  }
  return *e;
}

void check_data_kind(std::string_view name, DataKind want) {
  const DataEntry* e = find_data(name);
  if (e == nullptr || e->kind == want) return;
  fail("[data] {} is a {} data set, not a {} one: open it with {}()", name, data_kind_name(e->kind),
       data_kind_name(want), opener(e->kind));
}

DataPrepared prepare_data(const std::string& name, const std::string& data_dir, const LogFn& log) {
  const DataEntry& e = data_entry(name);
  DataPrepared p{name, e.kind, "", ""};
  if (e.kind == DataKind::corpus) {
    PrepareOptions opt;
    opt.log = log;
    PrepareReport r = prepare(name, data_dir, opt);
    p.dir = r.dir;
    p.summary = fmt::format(
        "{}: {} of text, {} / {} / {} tokens (train / valid / test), vocabulary {}, in {}", name,
        human_bytes(double(r.raw_bytes)), r.train.tokens, r.valid.tokens, r.test.tokens,
        r.vocab_size, r.dir);
    return p;
  }
  DatasetOptions opt;
  opt.log = log;
  if (e.kind == DataKind::labelled) {
    DatasetReport r = prepare_labelled(name, data_dir, opt);
    // Opened again: the summary reports what a reader gets, checksums included.
    LabelledSplits d = open_labelled(name, data_dir);
    p.dir = r.dir;
    p.summary = fmt::format(
        "{}: x [N, {}, {}] f32 in [0, 1], y i64 in [0, {}); N = {} / {} / {} (train / valid / "
        "test); {} in {} ({} {}, {} extracted; {})",
        name, d.steps, d.features, d.num_classes, d.train.size(), d.valid.size(), d.test.size(),
        human_bytes(double(r.file_bytes)), r.dir, e.package, r.package_version,
        human_bytes(double(r.extracted_bytes)), times(r));
    return p;
  }
  DatasetReport r = prepare_series(name, data_dir, opt);
  Series s = open_series(name, data_dir);
  p.dir = r.dir;
  const SplitRange test = s.range("test");
  p.summary = fmt::format(
      "{}: values [{}, {}] f32 ({}), every {}; train / valid / test rows {} / {} / {}; "
      "seasonal period {}; {} in {} ({} {}; {})",
      name, s.length(), s.features(), fmt::join(s.columns, ", "), s.period, s.train_end,
      s.valid_end - s.train_end, test.size(), s.seasonal_period, human_bytes(double(r.file_bytes)),
      r.dir, e.package, r.package_version, times(r));
  // The numbers every forecast of this series is judged against.
  const WindowSpec spec{s.seasonal_period, s.horizon, 1};
  for (Scale scale : {Scale::standardised, Scale::raw}) {
    NaiveBaselines b = naive_baselines(s, "test", spec, scale);
    p.summary += fmt::format(
        "\n  test split, horizon {}, {} windows, {}: last value MSE {:.4g} MAE {:.4g}; seasonal "
        "naive (m = {}) MSE {:.4g} MAE {:.4g}",
        b.horizon, b.windows, scale == Scale::standardised ? "standardised" : "raw units",
        b.last_value.mse, b.last_value.mae, b.season, b.seasonal_naive.mse, b.seasonal_naive.mae);
  }
  return p;
}

}  // namespace rill::data
