// Small data sets made on the fly (see datasets.h).
#include "tests/support/datasets.h"

#include <cmath>
#include <random>

#include "rill/data/labelled.h"
#include "rill/data/series.h"

namespace rill::testing {

void prepare_cue_set(const std::string& dir, const std::string& name) {
  data::LabelledInfo info;
  info.source.name = name;
  info.source.package = {"test", "none", "true", "true", "echo 0"};
  info.source.description = "made by the tests";
  info.format = data::LabelledFormat::csv;
  info.steps = 12, info.features = 4, info.max_value = 1;
  info.class_names = {"a", "b", "c", "d"};
  info.valid_percent = 10, info.test_percent = 10, info.seed = 3;
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> noise(0, 0.3);
  std::string csv;
  for (int r = 0; r < 1200; ++r) {
    const int label = int(rng() % 4);
    for (int t = 0; t < 12; ++t)
      for (int f = 0; f < 4; ++f)
        csv += fmt::format("{:.4f},", t == 0 ? (f == label ? 1.0 : 0.0) : noise(rng));
    csv += fmt::format("{}\n", label);
  }
  data::prepare_labelled_from(info, {{"csv", csv}}, dir);
}

void prepare_sine(const std::string& dir, const std::string& name, int length) {
  data::SeriesInfo s;
  s.source.name = name;
  s.source.package = {"test", "none", "true", "true", "echo 0"};
  s.source.extract = {{"csv", "true"}};
  s.source.description = "made by the tests";
  s.value_columns = {"y"};
  s.time_format = data::TimeFormat::none;
  s.period = "1 step";
  s.seasonal_period = 24;
  s.season = "the sine's period";
  s.horizon = 6;
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 0.1);
  std::string csv = "y\n";
  for (int t = 0; t < length; ++t)
    csv += fmt::format("{:.6f}\n", std::sin(2 * M_PI * t / 24) + noise(rng));
  data::prepare_series_from(s, csv, dir);
}

}  // namespace rill::testing
