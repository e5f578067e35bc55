// IDX parsing and writing (see idx.h).
#include "rill/data/idx.h"

#include "rill/core/error.h"

namespace rill::data {

int64_t IdxArray::count() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

IdxArray parse_idx(std::string_view bytes, const std::string& source) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  RILL_CHECK(bytes.size() >= 4, "[data] {}: {} bytes are too few for an IDX header", source,
             bytes.size());
  RILL_CHECK(byte(0) == 0 && byte(1) == 0,
             "[data] {}: bad IDX magic {:02x} {:02x} (expected two zero bytes; is it still "
             "gzip-compressed?)",
             source, byte(0), byte(1));
  RILL_CHECK(byte(2) == 0x08,
             "[data] {}: IDX element type 0x{:02x} is not supported (only 0x08, unsigned bytes)",
             source, byte(2));
  const int rank = byte(3);
  RILL_CHECK(rank >= 1 && rank <= 4, "[data] {}: IDX arrays of {} dimensions are not supported",
             source, rank);
  const size_t header = 4 + 4 * size_t(rank);
  RILL_CHECK(bytes.size() >= header, "[data] {}: truncated IDX header ({} bytes, need {})", source,
             bytes.size(), header);
  IdxArray a;
  uint64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    const size_t p = 4 + 4 * size_t(d);
    const uint64_t n = (uint64_t(byte(p)) << 24) | (uint64_t(byte(p + 1)) << 16) |
                       (uint64_t(byte(p + 2)) << 8) | uint64_t(byte(p + 3));
    a.dims.push_back(static_cast<int64_t>(n));
    // Checked before multiplying: four sizes below 2^32 could overflow 64 bits.
    RILL_CHECK(n == 0 || count <= bytes.size() / n,
               "[data] {}: IDX dimensions [{}] need more bytes than the {} there are (truncated)",
               source, fmt::join(a.dims, ", "), bytes.size());
    count *= n;
  }
  const uint64_t have = bytes.size() - header;
  RILL_CHECK(have == count,
             "[data] {}: IDX dimensions [{}] need {} bytes of data, the file has {} ({})", source,
             fmt::join(a.dims, ", "), count, have, have < count ? "truncated" : "trailing bytes");
  a.data = bytes.substr(header);
  return a;
}

std::string encode_idx(const std::vector<int64_t>& dims, const std::vector<uint8_t>& values) {
  RILL_CHECK(!dims.empty() && dims.size() <= 4, "[data] IDX arrays have 1 to 4 dimensions, not {}",
             dims.size());
  std::string s = {0, 0, 0x08, static_cast<char>(dims.size())};
  int64_t count = 1;
  for (int64_t d : dims) {
    RILL_CHECK(d >= 0 && d <= 0xFFFFFFFFll, "[data] bad IDX dimension {}", d);
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((d >> shift) & 0xFF);
    count *= d;
  }
  RILL_CHECK(count == static_cast<int64_t>(values.size()),
             "[data] IDX dimensions [{}] hold {} values, given {}", fmt::join(dims, ", "), count,
             values.size());
  s.append(reinterpret_cast<const char*>(values.data()), values.size());
  return s;
}

}  // namespace rill::data
