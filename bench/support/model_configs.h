// What the model-level benchmarks share besides the machine: reading the model config out of a
// file (a run config's "model", or a bare model config) and printing byte counts.
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace rill::bench {

// The model config in the JSON file at path: its "model" when it is a run config, else the
// whole file. Errors name the file.
nlohmann::json read_model_config(const std::string& path);

// "512 B", "4.2 KiB", "48.83 MiB", "1.20 GiB".
std::string bytes_text(size_t b);

}  // namespace rill::bench
