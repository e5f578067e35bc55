// The IDX array format of the MNIST family: a 4-byte magic (two zero bytes, a type code, the
// number of dimensions), each dimension's size as a big-endian u32, then the elements in
// row-major order. Only unsigned bytes (type 0x08) are read: Fashion-MNIST's images and labels
// are stored that way, and anything else is refused rather than guessed at.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rill::data {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. [N, 28, 28] for images, [N] for labels
  std::string_view data;      // the elements, a view into the parsed bytes (keep them alive)
  int64_t count() const;      // product of dims
  uint8_t operator[](int64_t i) const { return static_cast<uint8_t>(data[size_t(i)]); }
};

// Parses bytes (an uncompressed IDX file); errors start with "[data] <source>:" and say what is
// wrong (bad magic, unsupported type, truncated or trailing bytes).
IdxArray parse_idx(std::string_view bytes, const std::string& source);

// The IDX bytes of a u8 array (for tests, and to document the layout by construction).
std::string encode_idx(const std::vector<int64_t>& dims, const std::vector<uint8_t>& values);

}  // namespace rill::data
