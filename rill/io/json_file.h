// JSON files: a whole file read and parsed, with errors that name the file and what it was meant
// to be, and an atomic write (a crash leaves the previous file).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "rill/core/error.h"

namespace rill {

// what names the file in errors, e.g. "the rl config":
//   [config] cannot open the rl config runs/x.json
//   [config] the rl config runs/x.json is not valid JSON: ...
nlohmann::json read_json_file(const std::string& path, const std::string& what);

// A config read from a file: read_json_file, then parse (a from_json); an error parse raises
// is rethrown naming the file: "[config] ... (in runs/x.json)".
template <class Parse>
auto parse_json_file(const std::string& path, const std::string& what, Parse parse)
    -> decltype(parse(nlohmann::json())) {
  const nlohmann::json j = read_json_file(path, what);
  try {
    return parse(j);
  } catch (const Error& e) {
    fail("{} (in {})", e.what(), path);
  }
}

// Writes j indented, with a final newline, atomically.
void write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace rill
