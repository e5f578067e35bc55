// Token file writing (atomic) and reading (mmap, validated before any token is used).
#include "rill/data/token_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "rill/io/atomic_file.h"

namespace rill::data {

static_assert(std::endian::native == std::endian::little,
              "token files are little-endian and read in place");

namespace {

template <class T>
void put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

void write_token_file(const std::string& path, std::span<const int32_t> tokens, TokenDType dtype,
                      uint32_t vocab_size) {
  RILL_CHECK(dtype == TokenDType::u8 || dtype == TokenDType::u32, "[data] {}: bad token dtype {}",
             path, static_cast<uint32_t>(dtype));
  RILL_CHECK(dtype != TokenDType::u8 || vocab_size <= 256,
             "[data] {}: vocabulary of {} does not fit u8 tokens", path, vocab_size);
  uint8_t header[kTokenFileHeaderBytes] = {};
  std::memcpy(header, kTokenFileMagic, 8);
  put<uint32_t>(header + 8, kTokenFileVersion);
  put<uint32_t>(header + 12, static_cast<uint32_t>(dtype));
  put<uint64_t>(header + 16, tokens.size());
  put<uint32_t>(header + 24, vocab_size);
  size_t width = static_cast<size_t>(dtype);
  std::vector<uint8_t> body(tokens.size() * width);
  for (size_t i = 0; i < tokens.size(); ++i) {
    int32_t t = tokens[i];
    RILL_CHECK(t >= 0 && static_cast<uint32_t>(t) < vocab_size,
               "[data] {}: token {} at {} is outside [0, {})", path, t, i, vocab_size);
    if (dtype == TokenDType::u8)
      body[i] = static_cast<uint8_t>(t);
    else
      put<uint32_t>(body.data() + 4 * i, static_cast<uint32_t>(t));
  }
  write_file_atomically(path, [&](int fd) {
    write_all(fd, header, sizeof(header), path);
    write_all(fd, body.data(), body.size(), path);
  });
}

TokenFile::TokenFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("[data] cannot open token file {}: {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail("[data] cannot stat {}: {}", path, std::strerror(err));
  }
  map_bytes_ = static_cast<size_t>(st.st_size);
  if (map_bytes_ > 0) {
    map_ = ::mmap(nullptr, map_bytes_, PROT_READ, MAP_SHARED, fd, 0);
    if (map_ == MAP_FAILED) {
      int err = errno;
      map_ = nullptr;
      ::close(fd);
      fail("[data] cannot mmap {}: {}", path, std::strerror(err));
    }
  }
  ::close(fd);  // the mapping keeps the file alive
  try {
    const uint8_t* p = static_cast<const uint8_t*>(map_);
    RILL_CHECK(map_bytes_ >= kTokenFileHeaderBytes,
               "[data] {} is truncated: {} bytes, shorter than the {}-byte header", path,
               map_bytes_, kTokenFileHeaderBytes);
    RILL_CHECK(std::memcmp(p, kTokenFileMagic, 8) == 0,
               "[data] {} is not a rill token file (bad magic; expected \"RILLTOK\")", path);
    uint32_t version = get<uint32_t>(p + 8);
    RILL_CHECK(version == kTokenFileVersion,
               "[data] {} has token file version {}; this build reads version {}", path, version,
               kTokenFileVersion);
    uint32_t dtype = get<uint32_t>(p + 12);
    RILL_CHECK(dtype == 1 || dtype == 4,
               "[data] {} has an unknown token dtype code {} (expected 1 = u8 or 4 = u32)", path,
               dtype);
    dtype_ = static_cast<TokenDType>(dtype);
    count_ = get<uint64_t>(p + 16);
    vocab_size_ = get<uint32_t>(p + 24);
    RILL_CHECK(vocab_size_ > 0, "[data] {} records a vocabulary size of 0", path);
    // Division, not multiplication, so a garbage count cannot overflow the comparison.
    uint64_t body = map_bytes_ - kTokenFileHeaderBytes;
    RILL_CHECK(body % dtype == 0 && body / dtype == count_,
               "[data] {} is truncated or has trailing bytes: its header says {} tokens of {} "
               "bytes ({} bytes in all) but the file has {} bytes",
               path, count_, dtype, kTokenFileHeaderBytes + (count_ <= body ? count_ * dtype : 0),
               map_bytes_);
    data_ = p + kTokenFileHeaderBytes;
  } catch (...) {
    unmap();
    throw;
  }
}

TokenFile::TokenFile(TokenFile&& other) noexcept { *this = std::move(other); }

TokenFile& TokenFile::operator=(TokenFile&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    data_ = std::exchange(other.data_, nullptr);
    count_ = std::exchange(other.count_, 0);
    dtype_ = other.dtype_;
    vocab_size_ = other.vocab_size_;
  }
  return *this;
}

TokenFile::~TokenFile() { unmap(); }

void TokenFile::unmap() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  data_ = nullptr;
}

int32_t TokenFile::at(uint64_t i) const {
  RILL_CHECK(i < count_, "[data] token index {} is out of range for {} ({} tokens)", i, path_,
             count_);
  return (*this)[i];
}

void TokenFile::copy_to(uint64_t start, uint64_t n, int64_t* out) const {
  RILL_CHECK(start <= count_ && n <= count_ - start,
             "[data] tokens [{}, {}) are out of range for {} ({} tokens)", start, start + n, path_,
             count_);
  if (dtype_ == TokenDType::u8) {
    const uint8_t* src = data_ + start;
    for (uint64_t i = 0; i < n; ++i) out[i] = src[i];
  } else {
    const uint32_t* src = as_u32() + start;
    for (uint64_t i = 0; i < n; ++i) out[i] = src[i];
  }
}

void TokenFile::validate_tokens() const {
  uint32_t max = 0;
  uint64_t where = 0;
  for (uint64_t i = 0; i < count_; ++i) {
    uint32_t t = static_cast<uint32_t>((*this)[i]);
    if (t > max) {
      max = t;
      where = i;
    }
  }
  RILL_CHECK(count_ == 0 || max < vocab_size_,
             "[data] {}: token {} at {} is outside the vocabulary of {}", path_, max, where,
             vocab_size_);
}

}  // namespace rill::data
