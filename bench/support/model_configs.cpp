// Model configs from files and byte counts as text, for the model-level benchmarks.
#include "bench/support/model_configs.h"

#include <fmt/format.h>

#include <fstream>

#include "rill/core/error.h"

namespace rill::bench {

nlohmann::json read_model_config(const std::string& path) {
  std::ifstream in(path);
  RILL_CHECK(in.good(), "[bench] cannot read {}", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("[bench] {} is not JSON: {}", path, e.what());
  }
  return j.contains("model") ? j["model"] : j;
}

std::string bytes_text(size_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  if (b < (1u << 20)) return fmt::format("{:.1f} KiB", double(b) / 1024.0);
  if (b < (size_t(1) << 30)) return fmt::format("{:.2f} MiB", double(b) / double(1 << 20));
  return fmt::format("{:.2f} GiB", double(b) / double(1 << 30));
}

}  // namespace rill::bench
