// SHA-256 (FIPS 180-4), written here so that prepared data files can be checksummed without a
// third-party library. Incremental (update/finish) or one-shot over a buffer or a file.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rill::data {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest as 64 lowercase hex digits; the object must not be updated afterwards.
  std::string finish_hex();
  std::array<uint8_t, 32> finish();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(const void* data, size_t size);
inline std::string sha256_hex(std::string_view s) { return sha256_hex(s.data(), s.size()); }
// Hashes a whole file (read in chunks); throws rill::Error naming the path when it cannot.
std::string sha256_file(const std::string& path);

}  // namespace rill::data
