// bfloat16 <-> f32 conversions shared by file formats (safetensors) and packed weights: bf16 is
// the top 16 bits of an f32 (same exponent range, 8 significant bits).
#pragma once
#include <cstdint>
#include <cstring>

namespace rill {

// Round to nearest, ties to even, in the bits: adding 0x7FFF plus the lowest kept bit carries
// into the kept half exactly when the dropped half is above one half, or equal and the kept
// half is odd. Overflow rounds to infinity like any other carry. NaN stays a (quiet) NaN:
// the carry could otherwise turn a NaN whose payload sits in the low half into infinity.
inline uint16_t float_to_bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7FFFu + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

// Exact: the bf16 bits become the high half of the f32.
inline float bfloat16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace rill
