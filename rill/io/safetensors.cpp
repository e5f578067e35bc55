// safetensors files of rill tensors: the memory-mapped reader and the atomic writer.
#include "rill/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "rill/core/error.h"
#include "rill/io/atomic_file.h"

namespace rill {

using safetensors::Entry;
using safetensors::StDType;

uint16_t float_to_half(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);   // NaN
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to inf
  if (abs < 0x38800000u) {  // subnormal half (or zero): scale into the integer mantissa
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 - (e - 127) + 13 - 1 + 1
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FFu;
  uint32_t u;
  if (e == 0) {
    if (m == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int shift = 0;
      uint32_t mm = m;
      while (!(mm & 0x400u)) mm <<= 1, ++shift;
      u = sign | static_cast<uint32_t>(127 - 15 + 1 - shift) << 23 | (mm & 0x3FFu) << 13;
    }
  } else if (e == 31) {
    u = sign | 0x7F800000u | m << 13;
  } else {
    u = sign | (e + 127 - 15) << 23 | m << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  RILL_CHECK(fd >= 0, "[safetensors] cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("[safetensors] cannot stat {}: {}", path, std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    RILL_CHECK(m != MAP_FAILED, "[safetensors] cannot map {}: {}", path, std::strerror(errno));
    map_ = static_cast<const uint8_t*>(m);
  } else {
    ::close(fd);
  }
  try {
    header_ = safetensors::parse_header(map_, size_, path);
  } catch (...) {
    if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), size_);
}

std::vector<std::string> SafetensorsReader::names() const {
  std::vector<std::string> out;
  for (const Entry& e : header_.entries) out.push_back(e.name);
  return out;
}

bool SafetensorsReader::contains(const std::string& name) const {
  return std::any_of(header_.entries.begin(), header_.entries.end(),
                     [&](const Entry& e) { return e.name == name; });
}

const Entry& SafetensorsReader::entry(const std::string& name) const {
  for (const Entry& e : header_.entries)
    if (e.name == name) return e;
  fail("[safetensors] {}: no tensor named \"{}\"", path_, name);
}

Tensor SafetensorsReader::load(const std::string& name) const {
  const Entry& e = entry(name);
  const uint8_t* src = map_ + header_.data_start + e.begin;
  const int64_t n = rill::numel(e.shape);
  auto raw = [&](DType d) {
    Tensor t = Tensor::empty(e.shape, d);
    if (n > 0) std::memcpy(t.data_ptr(), src, e.end - e.begin);
    return t;
  };
  switch (e.dtype) {
    case StDType::F32:
      return raw(DType::f32);
    case StDType::F64:
      return raw(DType::f64);
    case StDType::I32:
      return raw(DType::i32);
    case StDType::I64:
      return raw(DType::i64);
    case StDType::BF16:
    case StDType::F16: {
      Tensor t = Tensor::empty(e.shape, DType::f32);
      float* out = t.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        out[i] = e.dtype == StDType::BF16 ? bfloat16_to_float(v) : half_to_float(v);
      }
      return t;
    }
  }
  fail("[safetensors] {}: tensor \"{}\" has an unsupported dtype", path_, name);
}

namespace {

StDType native_dtype(DType d) {
  switch (d) {
    case DType::f32:
      return StDType::F32;
    case DType::f64:
      return StDType::F64;
    case DType::i32:
      return StDType::I32;
    case DType::i64:
      return StDType::I64;
  }
  return StDType::F32;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata,
                      const std::map<std::string, StDType>& store_as) {
  std::vector<Entry> entries;
  std::vector<Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    RILL_CHECK(t.defined(), "[safetensors] {}: tensor \"{}\" is undefined", path, name);
    RILL_CHECK(!name.empty() && name != "__metadata__",
               "[safetensors] {}: \"{}\" is not a valid tensor name", path, name);
    for (const Entry& e : entries)
      RILL_CHECK(e.name != name, "[safetensors] {}: duplicate name \"{}\"", path, name);
    Entry e;
    e.name = name;
    auto it = store_as.find(name);
    e.dtype = it == store_as.end() ? native_dtype(t.dtype()) : it->second;
    RILL_CHECK(
        e.dtype == native_dtype(t.dtype()) ||
            (t.dtype() == DType::f32 && (e.dtype == StDType::BF16 || e.dtype == StDType::F16)),
        "[safetensors] {}: tensor \"{}\" of dtype {} cannot be stored as {}", path, name,
        dtype_name(t.dtype()), safetensors::dtype_name(e.dtype));
    e.shape = t.shape();
    e.begin = offset;
    e.end = offset + static_cast<uint64_t>(t.numel()) * safetensors::dtype_size(e.dtype);
    offset = e.end;
    entries.push_back(e);
    data.push_back(t.detach().contiguous());
  }
  std::string header = safetensors::serialize_header(entries, metadata);
  write_file_atomically(path, [&](int fd) {
    write_all(fd, header.data(), header.size(), path);
    for (size_t i = 0; i < entries.size(); ++i) {
      const Entry& e = entries[i];
      const Tensor& t = data[i];
      if (e.dtype == StDType::BF16 || e.dtype == StDType::F16) {
        std::vector<uint16_t> buf(t.numel());
        const float* p = t.data<float>();
        for (int64_t k = 0; k < t.numel(); ++k)
          buf[k] = e.dtype == StDType::BF16 ? float_to_bfloat16(p[k]) : float_to_half(p[k]);
        write_all(fd, buf.data(), buf.size() * 2, path);
      } else {
        write_all(fd, t.data_ptr(), t.nbytes(), path);
      }
    }
  });
}

}  // namespace rill
