// Manifests of prepared data and the file helpers around them (see manifest.h).
#include "rill/data/manifest.h"

#include <filesystem>
#include <fstream>

#include "rill/core/error.h"
#include "rill/data/sha256.h"
#include "rill/io/atomic_file.h"

namespace rill::data {

namespace fs = std::filesystem;

Json file_entry(const std::string& path) {
  return {{"bytes", static_cast<uint64_t>(fs::file_size(path))}, {"sha256", sha256_file(path)}};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RILL_CHECK(in.good(), "[data] cannot open {}", path);
  std::string s;
  in.seekg(0, std::ios::end);
  s.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  RILL_CHECK(in.good() || in.eof(), "[data] cannot read {}", path);
  return s;
}

void write_text(const std::string& path, std::string_view text) {
  write_file_atomically(path, [&](int fd) { write_all(fd, text.data(), text.size(), path); });
}

Json read_manifest(const std::string& path) {
  try {
    return Json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("[data] {} is not valid JSON ({}): run `rill data` for it again", path, e.what());
  }
}

void check_manifest_file(const Json& files, const std::string& dir, const std::string& file,
                         const std::string& manifest_path, const std::string& again, bool verify) {
  std::string path = (fs::path(dir) / file).string();
  RILL_CHECK(files.is_object() && files.contains(file), "[data] {} does not list {}: {}",
             manifest_path, file, again);
  RILL_CHECK(fs::exists(path), "[data] {} is missing: {}", path, again);
  if (!verify) return;
  std::string want = files[file].value("sha256", "");
  std::string got = sha256_file(path);
  RILL_CHECK(got == want,
             "[data] checksum mismatch for {}: the manifest records SHA-256 {} but the file "
             "hashes to {}; it changed after preparation: {}",
             path, want, got, again);
}

}  // namespace rill::data
