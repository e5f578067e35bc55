// libFuzzer target for `rill serve`'s request parser: any body must parse into a request or be
// refused with an ApiError of status 4xx; crashes, sanitizer reports, other exceptions and any
// other status are bugs. The first byte picks the endpoint.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rill/serve/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  rill::serve::Limits limits;
  limits.max_prompt_bytes = 64;
  try {
    switch (data[0] % 4) {
      case 0:
        rill::serve::parse_completion_request(body, limits);
        break;
      case 1:
        rill::serve::parse_create_session_request(body, limits);
        break;
      case 2:
        rill::serve::parse_continue_request(body, limits);
        break;
      default:
        rill::serve::check_session_id(body);
        break;
    }
  } catch (const rill::serve::ApiError& e) {
    if (e.status < 400 || e.status > 499) std::abort();
  }
  return 0;
}
