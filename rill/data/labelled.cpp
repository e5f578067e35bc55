// Labelled sequence data sets: registry, preparation and opening (see labelled.h).
#include "rill/data/labelled.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "rill/core/error.h"
#include "rill/data/csv.h"
#include "rill/data/idx.h"

namespace rill::data {

namespace fs = std::filesystem;

namespace {

const char* kSplitNames[3] = {"train", "valid", "test"};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void log_line(const DatasetOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

LabelledInfo fashion_mnist(const std::string& name, int64_t steps, int64_t features,
                           const std::string& description) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  LabelledInfo info;
  info.source.name = name;
  info.source.package = {"debian", "dataset-fashion-mnist",
                         apt_install_command("dataset-fashion-mnist"),
                         "test -f " + dir + "train-images-idx3-ubyte.gz && test -f " + dir +
                             "t10k-labels-idx1-ubyte.gz",
                         dpkg_version_command("dataset-fashion-mnist")};
  const std::pair<const char*, const char*> files[] = {
      {"train-images", "train-images-idx3-ubyte.gz"},
      {"train-labels", "train-labels-idx1-ubyte.gz"},
      {"test-images", "t10k-images-idx3-ubyte.gz"},
      {"test-labels", "t10k-labels-idx1-ubyte.gz"}};
  for (const auto& [role, file] : files)
    info.source.extract.push_back({role, "gzip -dc " + dir + file});
  info.source.description = description;
  info.format = LabelledFormat::idx;
  info.steps = steps;
  info.features = features;
  info.max_value = 255;
  info.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  info.valid_count = 5000;
  return info;
}

std::vector<LabelledInfo> make_registry() {
  std::vector<LabelledInfo> r;
  r.push_back(fashion_mnist("fashion-mnist-rows", 28, 28,
                            "Fashion-MNIST, 10 classes of clothing; each 28x28 image as 28 steps "
                            "of one 28-pixel row (70,000 images, MIT)"));
  r.push_back(fashion_mnist("fashion-mnist-pixels", 784, 1,
                            "Fashion-MNIST as 784 steps of one pixel each: the sequential-MNIST "
                            "long-memory benchmark (70,000 images, MIT)"));
  // Only the .deb is fetched, and only the one file is unpacked from it: installing
  // python3-sklearn would bring numpy, scipy and the rest of its tree for one 57 KB table.
  LabelledInfo digits;
  const std::string deb = "python3-sklearn_*.deb";
  const std::string file = "./usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
  digits.source.name = "digits";
  digits.source.package = {"debian-download", "python3-sklearn",
                           "rm -f " + deb +
                               " && apt-get download python3-sklearn && mkdir -p root "
                               "&& dpkg-deb --fsys-tarfile " +
                               deb + " | tar -x -C root " + file,
                           "test -f root/" + file, "dpkg-deb -f " + deb + " Version"};
  digits.source.extract = {{"csv", "gzip -dc root/" + file}};
  digits.source.description =
      "UCI optical handwritten digits as shipped with scikit-learn: 1,797 8x8 images of 0-9, "
      "8 steps of one 8-pixel row (BSD-3)";
  digits.format = LabelledFormat::csv;
  digits.steps = 8;
  digits.features = 8;
  digits.max_value = 16;
  digits.class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  digits.valid_percent = 10;
  digits.test_percent = 10;
  digits.seed = 20240601;
  r.push_back(digits);
  return r;
}

const std::string& raw_file(const RawFiles& raw, const std::string& role, const std::string& name) {
  auto it = raw.find(role);
  RILL_CHECK(it != raw.end(), "[data] data set {}: no extracted \"{}\" file", name, role);
  return it->second;
}

// The examples of one split, gathered from a pool of P = T * F values per example.
template <class T>
LabelledSplit gather(const T* pool, const std::vector<int64_t>& labels,
                     const std::vector<int64_t>& index, const LabelledInfo& info) {
  const int64_t n = static_cast<int64_t>(index.size()), p = info.steps * info.features;
  LabelledSplit s;
  s.x = Tensor::empty({n, info.steps, info.features}, DType::f32);
  s.y = Tensor::empty({n}, DType::i64);
  float* x = s.x.data<float>();
  int64_t* y = s.y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const T* src = pool + index[size_t(i)] * p;
    for (int64_t j = 0; j < p; ++j)
      x[i * p + j] = static_cast<float>(double(src[j]) / info.max_value);
    y[i] = labels[size_t(index[size_t(i)])];
  }
  return s;
}

std::vector<int64_t> range_of(int64_t begin, int64_t end) {
  std::vector<int64_t> v;
  for (int64_t i = begin; i < end; ++i) v.push_back(i);
  return v;
}

void check_label(int64_t label, const LabelledInfo& info, const std::string& where) {
  RILL_CHECK(label >= 0 && label < static_cast<int64_t>(info.class_names.size()),
             "[data] {}: label {} is outside [0, {})", where, label, info.class_names.size());
}

// Official split from IDX files: train/valid from the official training set, test as given.
std::vector<LabelledSplit> split_idx(const LabelledInfo& info, const RawFiles& raw,
                                     Json& split_json) {
  const std::string& name = info.source.name;
  IdxArray images[2], labels[2];
  std::vector<int64_t> label_values[2];
  const char* part[2] = {"train", "test"};
  for (int k = 0; k < 2; ++k) {
    std::string img = std::string(part[k]) + "-images", lab = std::string(part[k]) + "-labels";
    images[k] = parse_idx(raw_file(raw, img, name), name + " " + img);
    labels[k] = parse_idx(raw_file(raw, lab, name), name + " " + lab);
    RILL_CHECK(images[k].dims.size() == 3 && labels[k].dims.size() == 1,
               "[data] {}: {} should be [N, rows, columns] and {} [N], got [{}] and [{}]", name,
               img, lab, fmt::join(images[k].dims, ", "), fmt::join(labels[k].dims, ", "));
    RILL_CHECK(images[k].dims[0] == labels[k].dims[0],
               "[data] {}: {} images but {} labels in the {} set", name, images[k].dims[0],
               labels[k].dims[0], part[k]);
    RILL_CHECK(images[k].dims[1] * images[k].dims[2] == info.steps * info.features,
               "[data] {}: {}x{} images do not make {} steps of {} features", name,
               images[k].dims[1], images[k].dims[2], info.steps, info.features);
    for (int64_t i = 0; i < labels[k].count(); ++i) {
      label_values[k].push_back(labels[k][i]);
      check_label(labels[k][i], info, fmt::format("{} {} #{}", name, lab, i));
    }
  }
  const int64_t n_train_all = images[0].dims[0];
  RILL_CHECK(info.valid_count > 0 && info.valid_count < n_train_all,
             "[data] {}: cannot take the last {} of {} training examples for valid", name,
             info.valid_count, n_train_all);
  const int64_t n_train = n_train_all - info.valid_count;
  auto pool = [](const IdxArray& a) { return reinterpret_cast<const uint8_t*>(a.data.data()); };
  split_json = {
      {"rule",
       fmt::format("official: test is the official test set ({} examples); valid is the last {} "
                   "examples of the official training set in file order (indices {}..{}); "
                   "train is the first {}",
                   images[1].dims[0], info.valid_count, n_train, n_train_all - 1, n_train)},
      {"valid_count", info.valid_count}};
  return {gather(pool(images[0]), label_values[0], range_of(0, n_train), info),
          gather(pool(images[0]), label_values[0], range_of(n_train, n_train_all), info),
          gather(pool(images[1]), label_values[1], range_of(0, images[1].dims[0]), info)};
}

// Shuffled split from a CSV pool.
std::vector<LabelledSplit> split_csv(const LabelledInfo& info, const RawFiles& raw,
                                     Json& split_json) {
  const std::string& name = info.source.name;
  CsvTable t = CsvTable::parse(raw_file(raw, "csv", name), /*has_header=*/false, name + " csv");
  const int64_t p = info.steps * info.features;
  RILL_CHECK(t.cols() == p + 1,
             "[data] {}: rows have {} fields, expected {} values ({} steps x {} features) and a "
             "label",
             t.source(), t.cols(), p + 1, info.steps, info.features);
  const int64_t n = t.rows();
  std::vector<double> pool(static_cast<size_t>(n * p));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < p; ++c) {
      double v = t.number(r, c);
      RILL_CHECK(v >= 0 && v <= info.max_value,
                 "[data] {}: line {}, field {}: {} is outside [0, {}]", t.source(), t.line_of(r),
                 c + 1, v, info.max_value);
      pool[size_t(r * p + c)] = v;
    }
    double label = t.number(r, p);
    RILL_CHECK(label == std::floor(label), "[data] {}: line {}: label {} is not an integer",
               t.source(), t.line_of(r), label);
    labels[size_t(r)] = static_cast<int64_t>(label);
    check_label(labels[size_t(r)], info, fmt::format("{} line {}", t.source(), t.line_of(r)));
  }
  RILL_CHECK(info.valid_percent > 0 && info.test_percent > 0 &&
                 info.valid_percent + info.test_percent < 100,
             "[data] {}: split percentages must be positive and leave room for train: valid {}%, "
             "test {}%",
             name, info.valid_percent, info.test_percent);
  const int64_t n_valid = n * info.valid_percent / 100, n_test = n * info.test_percent / 100;
  const int64_t n_train = n - n_valid - n_test;
  RILL_CHECK(n_valid > 0 && n_test > 0,
             "[data] {}: {} examples are too few to split {}% / {}% (a split would be empty)", name,
             n, info.valid_percent, info.test_percent);
  std::vector<int64_t> order = shuffled_order(n, info.seed);
  auto part = [&](int64_t b, int64_t e) {
    return std::vector<int64_t>(order.begin() + b, order.begin() + e);
  };
  split_json = {
      {"rule",
       fmt::format("shuffled: Fisher-Yates with std::mt19937_64(seed) (for i = N-1 down to 1 "
                   "swap positions i and rng() % (i + 1)) over the {} rows in file order; "
                   "valid = floor(N * {} / 100), test = floor(N * {} / 100); train is the first "
                   "{} of the shuffled order, valid the next {}, test the last {}",
                   n, info.valid_percent, info.test_percent, n_train, n_valid, n_test)},
      {"seed", info.seed},
      {"valid_percent", info.valid_percent},
      {"test_percent", info.test_percent}};
  return {gather(pool.data(), labels, part(0, n_train), info),
          gather(pool.data(), labels, part(n_train, n_train + n_valid), info),
          gather(pool.data(), labels, part(n_train + n_valid, n), info)};
}

}  // namespace

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed) {
  std::vector<int64_t> order = range_of(0, n);
  // Written out rather than std::shuffle, whose algorithm the standard leaves open: the split
  // must be the same on every compiler.
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng() % uint64_t(i + 1));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

const std::vector<LabelledInfo>& labelled_sets() {
  static const std::vector<LabelledInfo> registry = make_registry();
  return registry;
}

const LabelledInfo* find_labelled(std::string_view name) {
  for (const LabelledInfo& l : labelled_sets())
    if (l.source.name == name) return &l;
  return nullptr;
}

const LabelledInfo& labelled_info(std::string_view name) {
  check_data_kind(name, DataKind::labelled);
  const LabelledInfo* info = find_labelled(name);
  if (info == nullptr) data_entry(name);  // throws, listing the known names
  return *info;
}

DatasetReport prepare_labelled_from(const LabelledInfo& info, const RawFiles& raw,
                                    const std::string& data_dir, const DatasetOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  const std::string& name = info.source.name;
  RILL_CHECK(!name.empty() && name.find('/') == std::string::npos,
             "[data] bad data set name \"{}\"", name);
  RILL_CHECK(info.steps > 0 && info.features > 0 && info.max_value > 0 && !info.class_names.empty(),
             "[data] data set {}: steps {}, features {}, max value {} and {} classes must all be "
             "positive",
             name, info.steps, info.features, info.max_value, info.class_names.size());
  DatasetReport report;
  report.dir = (fs::path(data_dir) / name).string();
  Json split_json;
  std::vector<LabelledSplit> splits = info.format == LabelledFormat::idx
                                          ? split_idx(info, raw, split_json)
                                          : split_csv(info, raw, split_json);
  const int64_t classes = static_cast<int64_t>(info.class_names.size());
  Json counts = Json::object(), class_counts = Json::object();
  std::vector<DatasetFile> files;
  for (int i = 0; i < 3; ++i) {
    const LabelledSplit& s = splits[size_t(i)];
    RILL_CHECK(s.size() > 0, "[data] data set {}: the {} split is empty", name, kSplitNames[i]);
    std::vector<int64_t> per_class(size_t(classes), 0);
    for (int64_t v : s.y.to_vector<int64_t>()) ++per_class[size_t(v)];
    counts[kSplitNames[i]] = s.size();
    class_counts[kSplitNames[i]] = per_class;
    files.push_back({std::string(kSplitNames[i]) + ".safetensors", {{"x", s.x}, {"y", s.y}}});
    log_line(options, fmt::format("[data] {}/{}.safetensors: x {} f32, y {} i64", report.dir,
                                  kSplitNames[i], fmt::join(s.x.shape(), "x"), s.size()));
  }
  split_json["train"] = counts["train"];
  split_json["valid"] = counts["valid"];
  split_json["test"] = counts["test"];
  split_json["class_counts"] = class_counts;

  Json extract = Json::object();
  for (const ExtractCommand& e : info.source.extract) extract[e.role] = e.command;
  Json m;
  m["format"] = manifest_format(DataKind::labelled);
  m["name"] = name;
  m["description"] = info.source.description;
  m["registry"] = info.source.package.registry;
  m["package"] = info.source.package.package;
  m["package_version"] = "none";
  m["install"] = info.source.package.install;
  m["extract"] = extract;
  m["x"] = {{"dtype", "f32"},
            {"layout", "[N, T, F]"},
            {"steps", info.steps},
            {"features", info.features},
            {"scaling", fmt::format("value / {}, in [0, 1] (not standardised)", info.max_value)},
            {"max_value", info.max_value}};
  m["y"] = {{"dtype", "i64"}, {"classes", classes}, {"class_names", info.class_names}};
  m["split"] = split_json;
  write_dataset(report.dir, name, files, m, report);
  report.build_seconds = seconds_since(t0);
  return report;
}

DatasetReport prepare_labelled(const LabelledInfo& info, const std::string& data_dir,
                               const DatasetOptions& options) {
  // The commands run after `cd`: the folder handed to them must be absolute.
  const std::string dir = fs::absolute(fs::path(data_dir) / info.source.name).lexically_normal();
  fs::create_directories(dir);
  DatasetReport fetched;
  RawFiles raw = fetch_dataset(info.source, DataKind::labelled, dir, options.log, fetched);
  DatasetReport report = prepare_labelled_from(info, raw, data_dir, options);
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

DatasetReport prepare_labelled(const std::string& name, const std::string& data_dir,
                               const DatasetOptions& options) {
  return prepare_labelled(labelled_info(name), data_dir, options);
}

const LabelledSplit& LabelledSplits::split(std::string_view which) const {
  if (which == "train") return train;
  if (which == "valid") return valid;
  if (which == "test") return test;
  fail("[data] unknown split \"{}\" (expected train, valid or test)", which);
}

LabelledSplits open_labelled(const std::string& name, const std::string& data_dir,
                             bool verify_checksums) {
  OpenedDataset o = open_dataset(name, data_dir, DataKind::labelled,
                                 {"train.safetensors", "valid.safetensors", "test.safetensors"},
                                 verify_checksums);
  const Json& m = o.manifest;
  LabelledSplits d;
  d.name = name;
  d.dir = o.dir;
  try {
    d.steps = m.at("x").at("steps").get<int64_t>();
    d.features = m.at("x").at("features").get<int64_t>();
    d.num_classes = m.at("y").at("classes").get<int64_t>();
    d.class_names = m.at("y").at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail("[data] {} lacks the shapes or classes ({}): {}", o.manifest_path, e.what(), o.again);
  }
  LabelledSplit* splits[3] = {&d.train, &d.valid, &d.test};
  for (int i = 0; i < 3; ++i) {
    SafetensorsReader reader(
        (fs::path(o.dir) / (std::string(kSplitNames[i]) + ".safetensors")).string());
    LabelledSplit& s = *splits[i];
    s.x = load_tensor(reader, "x", DType::f32, 3, o.again);
    s.y = load_tensor(reader, "y", DType::i64, 1, o.again);
    const int64_t n = m["split"].value(kSplitNames[i], int64_t(-1));
    RILL_CHECK(s.y.size(0) == n && s.x.shape() == Shape({n, d.steps, d.features}),
               "[data] {}: x {} and y {} do not match the manifest's [{}, {}, {}] and [{}]: {}",
               reader.path(), s.x.str(), s.y.str(), n, d.steps, d.features, n, o.again);
    const int64_t* y = s.y.data<int64_t>();
    for (int64_t k = 0; k < n; ++k)
      RILL_CHECK(y[k] >= 0 && y[k] < d.num_classes,
                 "[data] {}: label {} of example {} is outside "
                 "[0, {}): {}",
                 reader.path(), y[k], k, d.num_classes, o.again);
  }
  return d;
}

}  // namespace rill::data
