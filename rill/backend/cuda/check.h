// Internal to the CUDA backend (built only with RILL_CUDA=ON): checking CUDA runtime and cuBLAS
// status codes. Kept free of fmt so that nvcc-compiled .cu files can include it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace rill::cuda::detail {

// Throws rill::Error "[cuda] <call> failed: <cudaGetErrorString>" unless status is cudaSuccess.
// Clears the runtime's last-error slot first, so a caught failure is not reported again later.
void check(cudaError_t status, const char* call);
// Throws rill::Error "[cuda] <call> failed: <cublasGetStatusString>" unless CUBLAS_STATUS_SUCCESS.
void check(cublasStatus_t status, const char* call);
// Throws rill::Error with the message as given (argument validation in .cu files).
[[noreturn]] void throw_error(const std::string& message);

}  // namespace rill::cuda::detail
