// safetensors files of rill tensors: a memory-mapped reader and an atomic writer. F32, F64, I32
// and I64 map to rill dtypes as they are; BF16 and F16 are read into f32, and f32 tensors can be
// stored as BF16 or F16 (round to nearest even).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rill/core/bfloat16.h"
#include "rill/core/tensor.h"
#include "rill/io/safetensors_format.h"

namespace rill {

class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);  // maps the file and validates it all
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const safetensors::Entry& entry(const std::string& name) const;  // errors name file and tensor
  Tensor load(const std::string& name) const;                      // a fresh contiguous tensor

 private:
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t size_ = 0;
  safetensors::Header header_;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes the tensors (any strides) and metadata atomically. store_as maps a tensor name to the
// on-disk dtype when it differs from the tensor's own (only f32 -> BF16 / F16).
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      const std::map<std::string, safetensors::StDType>& store_as = {});

// IEEE half conversions (round to nearest even; NaN stays NaN); bfloat16 ones come from
// rill/core/bfloat16.h.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

}  // namespace rill
