// libFuzzer target for the safetensors header parser: any byte string must either parse or be
// refused with rill::Error; crashes, sanitizer reports and other exceptions are bugs.
#include <cstddef>
#include <cstdint>

#include "rill/core/error.h"
#include "rill/io/safetensors_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rill::safetensors::parse_header(data, size, "<fuzz input>");
  } catch (const rill::Error&) {
  }
  return 0;
}
