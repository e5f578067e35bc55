// The CUDA backend's entry points: device queries, an owning device buffer, a row-major cuBLAS
// SGEMM and a hand-written elementwise kernel. Without -DRILL_CUDA=ON they exist as stubs that
// fail clearly. No CUDA header is included here, so CPU-only code can include this file.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rill::cuda {

// True when built with CUDA and the runtime reports at least one device. Never throws: a missing
// driver or any other runtime error counts as no device.
bool available();
// Throws a clear rill::Error (why there is no device, or that the build has no CUDA) unless
// available().
void require();
// Number of devices the runtime reports; 0 on any error and in a build without CUDA.
int device_count();
// Waits for all work queued on the current device (kernels and cuBLAS calls are asynchronous).
void synchronize();

// Owns `bytes` of memory on the current device (cudaMalloc / cudaFree). Move-only. A size of 0
// allocates nothing and data() is null.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  size_t bytes() const { return bytes_; }
  void* data() const { return ptr_; }
  template <class T>
  T* data_as() const {
    return static_cast<T*>(ptr_);
  }

  // Blocking copies of the first `bytes` bytes; bytes must not exceed the buffer's size.
  void copy_from_host(const void* src, size_t bytes);
  void copy_to_host(void* dst, size_t bytes) const;

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// C = alpha * op(A) op(B) + beta * C on device pointers, row-major like rill::cpu::gemm:
// op(A) is m x k (A stored k x m when trans_a), op(B) is k x n, C is m x n; lda, ldb and ldc are
// row strides in elements. Uses a cuBLAS handle cached per thread and device, in plain FP32 math
// (no TF32). Asynchronous on the default stream. When beta is 0, C is not read (it may hold NaN).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// out[i] = a[i] + b[i] for i < n, on device pointers (out may alias a or b). Asynchronous on the
// default stream.
void add_f32(const float* a, const float* b, float* out, int64_t n);

}  // namespace rill::cuda
