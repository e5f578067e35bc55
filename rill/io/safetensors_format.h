// The safetensors byte format, without tensors: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then the data.
// parse_header() validates everything strictly (it is the fuzzing target); every error names
// the source file and, where there is one, the tensor.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rill::safetensors {

enum class StDType { F32, F64, BF16, F16, I32, I64 };

size_t dtype_size(StDType d);
const char* dtype_name(StDType d);
std::optional<StDType> parse_dtype(const std::string& s);

struct Entry {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets relative to the start of the data section
};

struct Header {
  std::vector<Entry> entries;  // sorted by name
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // offset of the data section in the file
  uint64_t data_size = 0;
};

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the reference implementation: 100 MB

Header parse_header(const uint8_t* bytes, size_t size, const std::string& source);

// The 8-byte length plus the JSON header, padded with spaces to a multiple of 8 bytes.
std::string serialize_header(const std::vector<Entry>& entries,
                             const std::map<std::string, std::string>& metadata);

}  // namespace rill::safetensors
