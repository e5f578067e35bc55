// Built when RILL_CUDA is off: the CUDA backend exists only as a clear error. Queries answer "no
// device"; everything that would touch a device throws through require().
#include "rill/backend/cuda/cuda.h"
#include "rill/core/error.h"

namespace rill::cuda {

bool available() { return false; }

void require() {
  fail("[cuda] rill was built without CUDA; configure with -DRILL_CUDA=ON (needs nvcc and cuBLAS)");
}

int device_count() { return 0; }

void synchronize() { require(); }

DeviceBuffer::DeviceBuffer(size_t bytes) {
  // Even an empty buffer fails, so that CPU-only builds never appear to hold device memory.
  require();
}

// Never owns memory in this build (the constructor throws), so there is nothing to free.
DeviceBuffer::~DeviceBuffer() = default;

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(other.ptr_), bytes_(other.bytes_) {
  other.ptr_ = nullptr;
  other.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  ptr_ = other.ptr_;
  bytes_ = other.bytes_;
  other.ptr_ = nullptr;
  other.bytes_ = 0;
  return *this;
}

void DeviceBuffer::copy_from_host(const void* src, size_t bytes) { require(); }

void DeviceBuffer::copy_to_host(void* dst, size_t bytes) const { require(); }

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  require();
}

void add_f32(const float* a, const float* b, float* out, int64_t n) { require(); }

}  // namespace rill::cuda
