// Token files (.bin): a 32-byte header then the tokens, read through a read-only memory map.
//
// Layout (all little-endian):
//   bytes 0-7   magic "RILLTOK\0"
//   bytes 8-11  u32 format version (1)
//   bytes 12-15 u32 dtype: 1 = u8 tokens (bytes), 4 = u32 tokens (words)
//   bytes 16-23 u64 token count
//   bytes 24-27 u32 vocabulary size (every token is below it)
//   bytes 28-31 u32 zero (reserved)
//   then count tokens of the dtype's width; the file ends exactly there.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "rill/core/error.h"

namespace rill::data {

enum class TokenDType : uint32_t { u8 = 1, u32 = 4 };

inline constexpr char kTokenFileMagic[8] = {'R', 'I', 'L', 'L', 'T', 'O', 'K', '\0'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr size_t kTokenFileHeaderBytes = 32;

// Writes tokens atomically, narrowing to dtype; every token must lie in [0, vocab_size).
void write_token_file(const std::string& path, std::span<const int32_t> tokens, TokenDType dtype,
                      uint32_t vocab_size);

class TokenFile {
 public:
  // Maps the file and checks the magic, version, dtype and that the size matches the count.
  // Throws rill::Error naming the path and what is wrong. Token values are checked against the
  // vocabulary size only by validate_tokens() (a full pass).
  explicit TokenFile(const std::string& path);
  TokenFile() = default;  // empty: size() 0, no file
  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  uint64_t size() const { return count_; }
  TokenDType dtype() const { return dtype_; }
  uint32_t vocab_size() const { return vocab_size_; }
  const std::string& path() const { return path_; }

  int32_t operator[](uint64_t i) const {
    return dtype_ == TokenDType::u8 ? static_cast<int32_t>(data_[i])
                                    : static_cast<int32_t>(as_u32()[i]);
  }
  int32_t at(uint64_t i) const;  // bounds-checked
  // The tokens in place; T must match the dtype (uint8_t or uint32_t).
  template <class T>
  std::span<const T> tokens() const;
  // Copies tokens [start, start + n) into out, widening to int64.
  void copy_to(uint64_t start, uint64_t n, int64_t* out) const;
  // Full pass: every token is below vocab_size().
  void validate_tokens() const;

 private:
  const uint32_t* as_u32() const { return reinterpret_cast<const uint32_t*>(data_); }
  void unmap();
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const uint8_t* data_ = nullptr;
  uint64_t count_ = 0;
  TokenDType dtype_ = TokenDType::u8;
  uint32_t vocab_size_ = 0;
};

template <class T>
std::span<const T> TokenFile::tokens() const {
  static_assert(std::is_same_v<T, uint8_t> || std::is_same_v<T, uint32_t>);
  constexpr TokenDType want = std::is_same_v<T, uint8_t> ? TokenDType::u8 : TokenDType::u32;
  RILL_CHECK(dtype_ == want, "[data] {} holds {}-byte tokens, asked for {}-byte", path_,
             static_cast<uint32_t>(dtype_), sizeof(T));
  return {reinterpret_cast<const T*>(data_), static_cast<size_t>(count_)};
}

}  // namespace rill::data
