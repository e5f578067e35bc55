// A block of host memory owned through the caching allocator; shared by a tensor and its views.
// A storage that append() (ops/index.h) grows in place also records how far its appends reach.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rill {

struct Storage {
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  size_t bytes = 0;
  // For a buffer made by append(): its capacity along the appended dim, and the end of the rows
  // written so far (every view of it ends at or before append_end, so writing past that end
  // changes no view). Capacity 0: an ordinary storage, never appended to in place.
  int64_t append_capacity = 0, append_end = 0;
};

}  // namespace rill
