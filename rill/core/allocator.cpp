// The caching allocator: freed blocks are kept by size class and reused, never returned to the
// system (a fresh page costs a fault), with live and peak byte counters.
#include "rill/core/allocator.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

namespace rill {

Allocator& Allocator::instance() {
  static Allocator* a = new Allocator();  // never destroyed: tensors may outlive statics
  return *a;
}

Allocator::~Allocator() { release_cache(); }

size_t Allocator::size_class(size_t bytes) {
  if (bytes <= 256) return 256;
  // Eight classes per power of two: at most 12.5% waste, few distinct classes.
  size_t p = std::bit_floor(bytes);
  size_t step = std::max<size_t>(p / 8, 64);  // aligned_alloc needs a multiple of the alignment
  return (bytes + step - 1) / step * step;
}

void* Allocator::allocate(size_t bytes) {
  size_t cls = size_class(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    live_ += bytes;
    if (live_ > peak_) peak_ = live_;
    auto it = free_.find(cls);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= cls;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, cls);
  if (!p) {
    release_cache();
    p = std::aligned_alloc(64, cls);
  }
  if (!p) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_ -= bytes;
    throw std::bad_alloc();
  }
  return p;
}

void Allocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  live_ -= bytes;
  size_t cls = size_class(bytes);
  free_[cls].push_back(ptr);
  cached_ += cls;
}

size_t Allocator::live_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_;
}
size_t Allocator::peak_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_;
}
size_t Allocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}
void Allocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  peak_ = live_;
}
void Allocator::release_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [cls, blocks] : free_)
    for (void* p : blocks) std::free(p);
  free_.clear();
  cached_ = 0;
}

}  // namespace rill
