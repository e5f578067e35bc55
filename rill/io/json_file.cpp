// Reading and writing whole JSON files (see json_file.h).
#include "rill/io/json_file.h"

#include <fstream>

#include "rill/core/error.h"
#include "rill/io/atomic_file.h"

namespace rill {

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  RILL_CHECK(in.good(), "[config] cannot open {} {}", what, path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("[config] {} {} is not valid JSON: {}", what, path, e.what());
  }
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  write_file_atomically(path, [&](int fd) { write_all(fd, text.data(), text.size(), path); });
}

}  // namespace rill
