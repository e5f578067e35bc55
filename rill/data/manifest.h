// manifest.json of a prepared data folder: written last, so that its presence means "prepared";
// it lists every file with its size and SHA-256, and opening checks the files against it. Also
// the whole-file read and atomic write the preparers share.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace rill::data {

using Json = nlohmann::ordered_json;

// {"bytes": size, "sha256": hex digest} of the file at path.
Json file_entry(const std::string& path);

// Parses path; a file that is not JSON gives an error naming it and the `rill data` fix.
Json read_manifest(const std::string& path);

// Checks the file `file` of folder `dir` against files[file] of the manifest at manifest_path:
// listed, present, and (when verify) of the recorded SHA-256. Errors end with `again`, the
// sentence that says how to prepare the data again.
void check_manifest_file(const Json& files, const std::string& dir, const std::string& file,
                         const std::string& manifest_path, const std::string& again, bool verify);

std::string read_file(const std::string& path);  // the whole file; errors name the path
void write_text(const std::string& path, std::string_view text);  // atomically

}  // namespace rill::data
