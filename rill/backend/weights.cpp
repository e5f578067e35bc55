// Packing f32 weights into the panel layouts of weights.h, and back.
#include "rill/backend/weights.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "rill/core/bfloat16.h"
#include "rill/core/error.h"

namespace rill {

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::f32:
      return "f32";
    case WeightFormat::bf16:
      return "bf16";
    case WeightFormat::int8:
      return "int8";
  }
  return "?";
}

WeightFormat weight_format_from_name(const std::string& name) {
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8})
    if (name == weight_format_name(f)) return f;
  fail("[pack_weights] unknown weight format '{}' (expected f32, bf16 or int8)", name);
}

void PackedWeights::Free::operator()(void* p) const { std::free(p); }

std::unique_ptr<uint8_t, PackedWeights::Free> PackedWeights::alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  // aligned_alloc wants a multiple of the alignment.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p == nullptr) throw std::bad_alloc();
  return std::unique_ptr<uint8_t, Free>(static_cast<uint8_t*>(p));
}

PackedWeights::PackedWeights(const PackedWeights& other) { *this = other; }

PackedWeights& PackedWeights::operator=(const PackedWeights& other) {
  if (this == &other) return *this;
  format_ = other.format_;
  n_ = other.n_;
  k_ = other.k_;
  data_bytes_ = other.data_bytes_;
  data_ = alloc(data_bytes_);
  if (data_bytes_) std::memcpy(data_.get(), other.data_.get(), data_bytes_);
  scale_.reset();
  if (other.scale_) {
    const size_t sb = size_t(panels() * kWeightPanel) * sizeof(float);
    scale_.reset(reinterpret_cast<float*>(alloc(sb).release()));
    std::memcpy(scale_.get(), other.scale_.get(), sb);
  }
  return *this;
}

const float* PackedWeights::f32_data() const {
  RILL_CHECK(format_ == WeightFormat::f32, "[PackedWeights] f32_data of {} weights",
             weight_format_name(format_));
  return reinterpret_cast<const float*>(data_.get());
}

const uint16_t* PackedWeights::bf16_data() const {
  RILL_CHECK(format_ == WeightFormat::bf16, "[PackedWeights] bf16_data of {} weights",
             weight_format_name(format_));
  return reinterpret_cast<const uint16_t*>(data_.get());
}

const int8_t* PackedWeights::int8_data() const {
  RILL_CHECK(format_ == WeightFormat::int8, "[PackedWeights] int8_data of {} weights",
             weight_format_name(format_));
  return reinterpret_cast<const int8_t*>(data_.get());
}

double PackedWeights::value(int64_t n, int64_t k) const {
  const int64_t p = n / kWeightPanel, j = n % kWeightPanel;
  switch (format_) {
    case WeightFormat::f32:
      return f32_data()[(p * k_ + k) * kWeightPanel + j];
    case WeightFormat::bf16:
      return bfloat16_to_float(
          bf16_data()[((p * k_pairs() + k / 2) * kWeightPanel + j) * 2 + k % 2]);
    case WeightFormat::int8:
      return double(int8_data()[(p * k_ + k) * kWeightPanel + j]) * double(scale_.get()[n]);
  }
  return 0;
}

PackedWeights pack_weights(const Tensor& w, WeightFormat format) {
  RILL_CHECK(w.defined() && w.dim() == 2 && w.dtype() == DType::f32,
             "[pack_weights] expects an f32 matrix [N, K], got {}",
             w.defined() ? w.str() : std::string("an undefined tensor"));
  PackedWeights out;
  out.format_ = format;
  out.n_ = w.size(0);
  out.k_ = w.size(1);
  const int64_t N = out.n_, K = out.k_, P = out.panels(), K2 = out.k_pairs();
  const std::vector<float> src = w.to_vector<float>();  // row-major [N, K]
  for (size_t i = 0; i < src.size(); ++i)
    RILL_CHECK(std::isfinite(src[i]), "[pack_weights] non-finite weight {} at ({}, {}) of {}",
               src[i], int64_t(i) / K, int64_t(i) % K, w.str());
  auto at = [&](int64_t n, int64_t k) { return n < N && k < K ? src[n * K + k] : 0.f; };
  if (N == 0 || K == 0) return out;

  switch (format) {
    case WeightFormat::f32: {
      out.data_bytes_ = size_t(P * K * kWeightPanel) * sizeof(float);
      out.data_ = PackedWeights::alloc(out.data_bytes_);
      float* d = reinterpret_cast<float*>(out.data_.get());
      for (int64_t p = 0; p < P; ++p)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t j = 0; j < kWeightPanel; ++j)
            d[(p * K + k) * kWeightPanel + j] = at(p * kWeightPanel + j, k);
      break;
    }
    case WeightFormat::bf16: {
      out.data_bytes_ = size_t(P * K2 * kWeightPanel * 2) * sizeof(uint16_t);
      out.data_ = PackedWeights::alloc(out.data_bytes_);
      uint16_t* d = reinterpret_cast<uint16_t*>(out.data_.get());
      for (int64_t p = 0; p < P; ++p)
        for (int64_t k = 0; k < 2 * K2; ++k)
          for (int64_t j = 0; j < kWeightPanel; ++j)
            d[((p * K2 + k / 2) * kWeightPanel + j) * 2 + k % 2] =
                float_to_bfloat16(at(p * kWeightPanel + j, k));
      break;
    }
    case WeightFormat::int8: {
      out.data_bytes_ = size_t(P * K * kWeightPanel);
      out.data_ = PackedWeights::alloc(out.data_bytes_);
      out.scale_.reset(reinterpret_cast<float*>(
          PackedWeights::alloc(size_t(P * kWeightPanel) * sizeof(float)).release()));
      int8_t* d = reinterpret_cast<int8_t*>(out.data_.get());
      float* scale = out.scale_.get();
      for (int64_t n = 0; n < P * kWeightPanel; ++n) {
        float m = 0;
        for (int64_t k = 0; k < K; ++k) m = std::max(m, std::abs(at(n, k)));
        // A row so small that m / 127 underflows to 0 counts as zero (its error is below m).
        const float s = m / 127.f;
        scale[n] = s;
        const int64_t p = n / kWeightPanel, j = n % kWeightPanel;
        for (int64_t k = 0; k < K; ++k) {
          const float q = s == 0 ? 0.f : std::clamp(std::round(at(n, k) / s), -127.f, 127.f);
          d[(p * K + k) * kWeightPanel + j] = static_cast<int8_t>(q);
        }
      }
      break;
    }
  }
  return out;
}

Tensor unpack_weights(const PackedWeights& w) {
  Tensor out = Tensor::empty({w.n(), w.k()});
  float* o = out.data<float>();
  for (int64_t n = 0; n < w.n(); ++n)
    for (int64_t k = 0; k < w.k(); ++k) o[n * w.k() + k] = static_cast<float>(w.value(n, k));
  return out;
}

}  // namespace rill
