// Packed weights for y = x W^T with W [N, K] (nn::Linear's layout): a weight matrix converted
// once, at load time, into the storage format and panel layout that the weight_gemm kernels
// (backend/cpu/weight_gemm.h, backend/ref/weight_gemm.h) read. Generation reads every weight
// once per token, so the bytes per weight set the speed; bf16 and int8 halve and quarter them.
//
// Formats (the value a kernel multiplies by, "the dequantised weight"):
//   f32   W as it is.
//   bf16  bf16(W[n,k]), round to nearest, ties to even (float_to_bfloat16); exact in f32.
//   int8  per output channel, symmetric: scale_n = max_k |W[n,k]| / 127 (in f32),
//         q = clamp(round_half_away(W[n,k] / scale_n), -127, 127); value q * scale_n.
//         A row of zeros has scale 0 and q 0 (no division by zero).
// Non-finite weights are rejected when packing.
//
// Layout (why: each kernel step loads a contiguous run of 16 output channels for one k, so that
// one weight load serves every row of x, and the AVX2 and AVX-512 kernels read the same bytes):
// output channels are grouped in panels of kWeightPanel = 16; N is padded with zero rows to a
// whole number of panels. Panel p holds channels 16p .. 16p+15, k-major:
//   f32   float   [P][K][16]       element (n, k) at (p*K + k)*16 + j,  n = 16p + j
//   bf16  uint16  [P][K2][16][2]   K2 = ceil(K/2), pairs of k side by side (k = 2i, 2i+1;
//                                  an odd K pads a zero): ((p*K2 + k/2)*16 + j)*2 + k%2,
//                                  so that one 32-bit lane holds both halves of a pair
//                                  (a shift or a mask turns each into f32; VDPBF16PS reads
//                                  the pair as it is)
//   int8  int8    [P][K][16]       as f32, plus scale [P*16] (0 for padded channels)
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "rill/core/tensor.h"

namespace rill {

enum class WeightFormat { f32, bf16, int8 };

constexpr int64_t kWeightPanel = 16;  // output channels per panel

const char* weight_format_name(WeightFormat f);
// "f32" | "bf16" | "int8"; anything else is an error that lists the three.
WeightFormat weight_format_from_name(const std::string& name);

class PackedWeights {
 public:
  PackedWeights() = default;
  PackedWeights(const PackedWeights& other);
  PackedWeights& operator=(const PackedWeights& other);
  PackedWeights(PackedWeights&&) noexcept = default;
  PackedWeights& operator=(PackedWeights&&) noexcept = default;

  WeightFormat format() const { return format_; }
  int64_t n() const { return n_; }  // output channels (rows of W)
  int64_t k() const { return k_; }  // input features (columns of W)
  int64_t panels() const { return (n_ + kWeightPanel - 1) / kWeightPanel; }
  int64_t k_pairs() const { return (k_ + 1) / 2; }  // bf16 rows per panel
  bool empty() const { return n_ == 0 || k_ == 0; }
  // Bytes a kernel reads per call: the panels (padding included) and the int8 scales.
  size_t bytes() const { return data_bytes_ + (scale_ ? size_t(panels() * kWeightPanel) * 4 : 0); }

  // The panels, 64-byte aligned; null when empty. Typed views of the one buffer.
  const float* f32_data() const;
  const uint16_t* bf16_data() const;
  const int8_t* int8_data() const;
  // int8 only: scale [panels() * 16], 64-byte aligned, zero past n().
  const float* scales() const { return scale_.get(); }

  // The dequantised weight (n, k) exactly: f32 and bf16 as floats, int8 as q * scale in double
  // (the product of a 7-bit integer and an f32 is exact there). The oracle reads this.
  double value(int64_t n, int64_t k) const;

 private:
  struct Free {
    void operator()(void* p) const;
  };
  static std::unique_ptr<uint8_t, Free> alloc(size_t bytes);
  friend PackedWeights pack_weights(const Tensor& w, WeightFormat format);

  WeightFormat format_ = WeightFormat::f32;
  int64_t n_ = 0, k_ = 0;
  size_t data_bytes_ = 0;
  std::unique_ptr<uint8_t, Free> data_;  // the panels
  std::unique_ptr<float, Free> scale_;   // int8 only
};

// Packs w [N, K] (f32, any strides; N, K >= 0) into `format`; errors name the shape and dtype.
PackedWeights pack_weights(const Tensor& w, WeightFormat format);
// The dequantised weights as a fresh f32 [N, K] tensor (int8: q * scale rounded to f32).
Tensor unpack_weights(const PackedWeights& w);

}  // namespace rill
