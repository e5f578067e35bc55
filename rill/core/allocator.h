// The host allocator: 64-byte aligned blocks, cached by size class and reused, so that a
// training step does not page-fault fresh memory (about 5 us per 4 KB page on these machines).
// It counts the bytes that live tensors hold (live and peak) for benchmarks and memory tests.
#pragma once
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace rill {

class Allocator {
 public:
  static Allocator& instance();

  void* allocate(size_t bytes);
  void deallocate(void* ptr, size_t bytes);

  size_t live_bytes() const;    // bytes requested by blocks not yet freed
  size_t peak_bytes() const;    // the maximum of live_bytes since the last reset_peak()
  size_t cached_bytes() const;  // bytes held in free lists for reuse
  void reset_peak();
  void release_cache();  // hands every cached block back to the system

  static size_t size_class(size_t bytes);  // the block size a request is rounded up to

 private:
  Allocator() = default;
  ~Allocator();
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
  size_t live_ = 0, peak_ = 0, cached_ = 0;
};

}  // namespace rill
