// The CUDA backend's host side (built with RILL_CUDA=ON): device queries, DeviceBuffer, status
// checking and the row-major SGEMM over cuBLAS. Kernels live in the .cu files beside it.
#include "rill/backend/cuda/cuda.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "rill/backend/cuda/check.h"
#include "rill/core/error.h"

namespace rill::cuda {

namespace detail {

void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  // A failed call also sets the last-error slot; reset it so a later launch check is not blamed.
  cudaGetLastError();
  fail("[cuda] {} failed: {} ({})", call, cudaGetErrorString(status), cudaGetErrorName(status));
}

void check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("[cuda] {} failed: {}", call, cublasGetStatusString(status));
}

void throw_error(const std::string& message) { throw Error(message); }

}  // namespace detail

namespace {

struct DeviceQuery {
  int count = 0;
  std::string error;  // why count is 0, when the runtime said so
};

// Queried once: the set of visible devices is fixed when the runtime initialises.
const DeviceQuery& device_query() {
  static const DeviceQuery q = [] {
    DeviceQuery r;
    const cudaError_t status = cudaGetDeviceCount(&r.count);
    if (status != cudaSuccess) {
      cudaGetLastError();  // not sticky; leave no trace for later checks
      r.count = 0;
      r.error = std::string(cudaGetErrorString(status)) + " (" + cudaGetErrorName(status) + ")";
    }
    return r;
  }();
  return q;
}

// One cuBLAS handle per thread and device: a handle is bound to the device current at creation,
// and per-thread handles need no locking. Destroyed at thread exit (before the runtime's own
// atexit teardown for the main thread); errors there are ignored because nothing can act on them.
struct HandleCache {
  std::vector<cublasHandle_t> by_device;
  ~HandleCache() {
    for (cublasHandle_t h : by_device)
      if (h != nullptr) cublasDestroy(h);
  }
};

cublasHandle_t cublas_handle() {
  thread_local HandleCache cache;
  int device = 0;
  detail::check(cudaGetDevice(&device), "cudaGetDevice");
  if (static_cast<size_t>(device) >= cache.by_device.size())
    cache.by_device.resize(static_cast<size_t>(device) + 1, nullptr);
  cublasHandle_t& h = cache.by_device[static_cast<size_t>(device)];
  if (h == nullptr) {
    cublasHandle_t created = nullptr;
    detail::check(cublasCreate(&created), "cublasCreate");
    // Plain FP32: TF32 tensor-op math would miss the f32 tolerance that tests hold sgemm to.
    const cublasStatus_t mode = cublasSetMathMode(created, CUBLAS_DEFAULT_MATH);
    if (mode != CUBLAS_STATUS_SUCCESS) cublasDestroy(created);
    detail::check(mode, "cublasSetMathMode");
    h = created;
  }
  return h;
}

}  // namespace

int device_count() { return device_query().count; }

bool available() { return device_count() > 0; }

void require() {
  const DeviceQuery& q = device_query();
  if (q.count > 0) return;
  if (!q.error.empty())
    fail("[cuda] no usable CUDA device: cudaGetDeviceCount failed: {}", q.error);
  fail("[cuda] no CUDA device found (cudaGetDeviceCount reported 0)");
}

void synchronize() { detail::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

DeviceBuffer::DeviceBuffer(size_t bytes) {
  if (bytes == 0) return;
  void* p = nullptr;
  detail::check(cudaMalloc(&p, bytes), "cudaMalloc");
  ptr_ = p;
  bytes_ = bytes;
}

DeviceBuffer::~DeviceBuffer() {
  // Destructors must not throw; a failing cudaFree here means the context is already gone.
  if (ptr_ != nullptr) cudaFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::copy_from_host(const void* src, size_t bytes) {
  RILL_CHECK(bytes <= bytes_, "[cuda.copy_from_host] {} bytes do not fit a buffer of {} bytes",
             bytes, bytes_);
  if (bytes == 0) return;
  detail::check(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
}

void DeviceBuffer::copy_to_host(void* dst, size_t bytes) const {
  RILL_CHECK(bytes <= bytes_, "[cuda.copy_to_host] asked for {} bytes from a buffer of {} bytes",
             bytes, bytes_);
  if (bytes == 0) return;
  detail::check(cudaMemcpy(dst, ptr_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  RILL_CHECK(m >= 0 && n >= 0 && k >= 0, "[cuda.sgemm] sizes must be >= 0, got m={} n={} k={}", m,
             n, k);
  // Row strides must cover a stored row: A is m x k (k x m when trans_a), B k x n (n x k).
  const int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  RILL_CHECK(lda >= std::max<int64_t>(1, a_cols) && ldb >= std::max<int64_t>(1, b_cols) &&
                 ldc >= std::max<int64_t>(1, n),
             "[cuda.sgemm] leading dimensions too small: lda={} (needs >= {}), ldb={} (needs >= "
             "{}), ldc={} (needs >= {}) for m={} n={} k={} trans_a={} trans_b={}",
             lda, a_cols, ldb, b_cols, ldc, n, m, n, k, trans_a, trans_b);
  if (m == 0 || n == 0) return;
  // A row-major matrix is its transpose in column-major, so C^T = op(B)^T op(A)^T is computed
  // column-major by swapping the operands (and m with n); each keeps its own transpose flag.
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  detail::check(
      cublasSgemm_64(cublas_handle(), op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc),
      "cublasSgemm");
}

}  // namespace rill::cuda
