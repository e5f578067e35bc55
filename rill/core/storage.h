// A block of host memory owned through the caching allocator; shared by a tensor and its views.
#pragma once
#include <cstddef>

namespace rill {

struct Storage {
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  size_t bytes = 0;
};

}  // namespace rill
