// Time series for forecasting: the registry (installed by package name), preparation into one
// safetensors file with a manifest, and opening it with its split points and periods.
//
// Prepared layout, data_dir/<name>/:
//   series.safetensors  values f32 [N_t, F]: the F columns in the source's own units (not
//                                            scaled; Series::standardised() scales them)
//                       time   f64 [N_t]:    when each row was observed (series with a time)
//   manifest.json       written last: package and version, columns, time unit, sampling period,
//                       seasonal period, split points, train mean and std, SHA-256 of the file
//
// Split rule, by time: train is rows [0, floor(N_t * train% / 100)), valid runs to
// floor(N_t * (train% + valid%) / 100), test is the rest (70% / 10% / 20% by default).
// Train statistics (mean, population std per column) come from the train rows only.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rill/core/tensor.h"
#include "rill/data/dataset.h"

namespace rill::data {

enum class TimeFormat {
  none,            // the rows are evenly spaced and nothing says when
  number,          // one numeric column (R's decimal years)
  date,            // one "YYYY-MM-DD" column -> days since 1970-01-01
  year_month_day,  // three integer columns -> days since 1970-01-01
};

struct SeriesInfo {
  DatasetSource source;  // one extraction command, role "csv": a table with a header row
  std::vector<std::string> value_columns;  // the F columns of values, in this order
  TimeFormat time_format = TimeFormat::none;
  std::vector<std::string> time_columns;  // number/date: one name; year_month_day: three
  std::string time_unit;                  // e.g. "days since 1970-01-01"
  std::string period;                     // the sampling period, e.g. "1 month"
  // Consecutive times must differ by this much (checked: the seasonal-naive baseline and any
  // model assume evenly spaced rows); 0 checks only that the spacing is constant.
  double time_step = 0;
  int64_t seasonal_period = 0;  // in rows: 132 months for sunspots, 7 for daily births
  std::string season;           // why, e.g. "the ~11-year solar cycle"
  int64_t horizon = 0;          // suggested forecast horizon in rows (the baselines `rill data`
                                // prints)
  int train_percent = 70, valid_percent = 10;  // test is the rest
};

// Every registered series: sunspots, us-births, seattle-weather.
const std::vector<SeriesInfo>& series_sets();
const SeriesInfo* find_series(std::string_view name);  // nullptr when unknown
// Throws for a name that is not a registered series (an unknown name lists every known data
// set; a corpus or labelled set says what it is).
const SeriesInfo& series_info(std::string_view name);

DatasetReport prepare_series(const std::string& name, const std::string& data_dir,
                             const DatasetOptions& options = {});
// The same for a series described here rather than registered (tests use a made-up package).
DatasetReport prepare_series(const SeriesInfo& info, const std::string& data_dir,
                             const DatasetOptions& options = {});
// The part after extraction, from the CSV text the extraction command would have printed.
DatasetReport prepare_series_from(const SeriesInfo& info, const std::string& csv,
                                  const std::string& data_dir, const DatasetOptions& options = {});

// Rows [begin, end) of one split.
struct SplitRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// The split rule above for n rows; every split must be non-empty.
struct SeriesSplitPoints {
  int64_t train_end = 0, valid_end = 0;
};
SeriesSplitPoints series_split_points(int64_t n, int train_percent, int valid_percent);

// Days since 1970-01-01 of a proleptic Gregorian date; an impossible date is an error.
int64_t days_from_civil(int64_t year, int64_t month, int64_t day);
// The same from "YYYY-MM-DD"; `where` names the value in errors.
int64_t days_from_iso_date(std::string_view date, const std::string& where);

struct Series {
  std::string name;
  std::string dir;
  Tensor values;  // f32 [N_t, F], in the source's units
  Tensor time;    // f64 [N_t], in time_unit; undefined when the source has no time
  std::vector<std::string> columns;  // F names
  std::string time_unit;
  std::string period;                         // sampling period
  int64_t seasonal_period = 0;                // in rows
  int64_t horizon = 0;                        // suggested, in rows
  int64_t train_end = 0, valid_end = 0;       // train [0, train_end), valid [.., valid_end), test
  std::vector<double> train_mean, train_std;  // per column, over the train rows

  int64_t length() const { return values.size(0); }    // N_t
  int64_t features() const { return values.size(1); }  // F
  SplitRange range(std::string_view which) const;      // "train", "valid" or "test"
  // (values - train_mean) / train_std, per column: f32 [N_t, F]. The usual forecasting scale;
  // MSE and MAE quoted on it are comparable across series.
  Tensor standardised() const;
};

// Opens data_dir/<name>. Not prepared: an error with the `rill data NAME` command; a labelled set
// or corpus name says so; a changed file (SHA-256, when verify_checksums) or a tensor of the
// wrong dtype or shape gives its own error.
Series open_series(const std::string& name, const std::string& data_dir,
                   bool verify_checksums = true);

}  // namespace rill::data
