// What preparing and opening a labelled set or a series share, whatever its kind: fetching its
// package and running its extraction commands, writing safetensors files and then a manifest
// that lists their SHA-256 (manifest.h), and opening a prepared folder with those checks and
// the `rill data NAME` hint when it is not prepared. labelled.h and series.h hold the kinds.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rill/data/manifest.h"
#include "rill/data/package.h"
#include "rill/data/registry.h"
#include "rill/io/safetensors.h"

namespace rill::data {

// A command that prints the bytes of one source file on stdout (it runs in the package's work
// folder, package.h), and the role the preparer knows that file by.
struct ExtractCommand {
  std::string role;  // e.g. "train-images", "csv"
  std::string command;
};

struct DatasetSource {
  std::string name;
  PackageSource package;
  std::vector<ExtractCommand> extract;
  std::string description;
};

using RawFiles = std::map<std::string, std::string>;  // role -> the bytes its command printed

struct DatasetOptions {
  LogFn log;  // progress lines; none when empty
};

struct DatasetReport {
  std::string dir;  // data_dir/<name>
  bool installed = false;
  std::string package_version;
  uint64_t extracted_bytes = 0;  // printed by the extraction commands
  uint64_t file_bytes = 0;       // of the prepared files, the manifest excluded
  double install_seconds = 0, extract_seconds = 0;
  double build_seconds = 0;  // parse, split, write and hash
};

// Installs the package when it is not present and runs every extraction command (stderr in
// dir/extract.log); dir must be absolute. Fills report.installed, times and extracted_bytes.
RawFiles fetch_dataset(const DatasetSource& source, DataKind kind, const std::string& dir,
                       const LogFn& log, DatasetReport& report);

struct DatasetFile {
  std::string file;  // e.g. "train.safetensors"
  NamedTensors tensors;
};

// Writes data_dir/<name>/: removes the old manifest first (so a crash leaves the folder
// unprepared, never described by a stale manifest), writes each file (safetensors, metadata
// naming the data set), then the manifest, with "files" (bytes and SHA-256 of each) added.
void write_dataset(const std::string& dir, const std::string& name,
                   const std::vector<DatasetFile>& files, Json manifest, DatasetReport& report);

// The manifest "format" of each kind ("rill-corpus", "rill-labelled", "rill-series").
const char* manifest_format(DataKind kind);

struct OpenedDataset {
  std::string dir;
  std::string manifest_path;
  Json manifest;
  std::string again;  // "run `rill data NAME` to prepare it again", for later errors
};

// Opens data_dir/<name> of the given kind: a registered name of another kind, an unknown name,
// a folder that is not prepared (with the command that prepares it), a manifest of another
// format or version, a missing or (when verify) changed file each give their own error.
OpenedDataset open_dataset(const std::string& name, const std::string& data_dir, DataKind kind,
                           const std::vector<std::string>& files, bool verify);

// What is known of the data set `name` without opening it: its kind (the registered one, else
// the one its prepared manifest under data_dir declares; none when neither says) and whether
// data_dir holds it prepared (its manifest is there). Callers that run many data sets check
// them all with it before they start.
struct DataStatus {
  std::optional<DataKind> kind;
  bool registered = false, prepared = false;
};
DataStatus data_status(const std::string& name, const std::string& data_dir);

// A tensor of a prepared file with the dtype and rank the format promises; errors name the file.
Tensor load_tensor(const SafetensorsReader& reader, const std::string& tensor, DType dtype,
                   int64_t rank, const std::string& again);

}  // namespace rill::data
