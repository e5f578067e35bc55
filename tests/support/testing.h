// Shared test utilities: the one tolerance table, random inputs (never zeros), non-contiguous
// views, comparisons, running an op under both backends, and f64 gradient checks.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "rill/backend/backend.h"
#include "rill/core/tensor.h"

namespace rill::testing {

// The tolerance table: |actual - expected| <= tol * max(|expected_i|, rms(expected)).
double tolerance(DType dtype);          // f64 1e-10, f32 1e-5
constexpr double kGradcheckTol = 1e-6;  // analytic vs central differences (f64, eps 1e-6)
constexpr double kGradcheckEps = 1e-6;
// Golden values recorded on one machine and checked on another (f64 runs): another BLAS kernel
// (AVX2 instead of AVX-512) orders its sums differently, and training amplifies the last bits.
constexpr double kCrossMachineTol = 1e-7;

// Normal random values in a fresh contiguous tensor.
Tensor random(const Shape& shape, DType dtype, uint64_t seed);
// Uniform in [lo, hi) (for ops with a restricted domain such as log or sqrt).
Tensor random_uniform(const Shape& shape, DType dtype, uint64_t seed, double lo, double hi);
// The same kind of values, but as a non-contiguous view (a transposed slice of a larger buffer;
// rank 0 and 1 come back as strided slices).
Tensor random_strided(const Shape& shape, DType dtype, uint64_t seed);
Tensor random_uniform_strided(const Shape& shape, DType dtype, uint64_t seed, double lo, double hi);

// Whether NaN may appear: by default a NaN on either side fails (two kernels that both leave a
// NaN-filled output unwritten must not pass); `allowed` lets NaN match NaN where a test feeds
// NaN in on purpose and expects it to propagate.
enum class NaN { fails, allowed };

// Fails the current test (with the worst element and its index) unless actual matches expected
// within the tolerance of expected's dtype (or `tol` when given).
::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double tol = -1,
                                     NaN nan = NaN::fails);
::testing::AssertionResult bitwise_equal(const Tensor& a, const Tensor& b);

// Runs fn under the ref backend and under the cpu backend, with output NaN-filling on, and checks
// that every output agrees; fn returns its outputs. Inputs are shared between both runs.
void expect_backends_agree(const std::function<std::vector<Tensor>()>& fn, const std::string& what,
                           double tol = -1, NaN nan = NaN::fails);

// Forward and backward under each backend: fn maps inputs (leaves that require grad) to one
// output; the loss is sum(output * fixed random weights). Outputs and every input gradient
// must agree between ref and cpu.
void expect_backends_agree_with_grad(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                     const std::vector<Tensor>& inputs, const std::string& what,
                                     double tol = -1);

// Runs fn under the cpu backend with 1, 2 and 3 threads; the results must be bitwise equal.
void expect_thread_invariant(const std::function<std::vector<Tensor>()>& fn,
                             const std::string& what);

// Central-difference gradient check in f64: compares the analytic gradient of
// loss = sum(fn(inputs) * R) (R random, fixed) with finite differences for every element of
// every floating input. Inputs must be f64. It runs under the ref oracle and then under the cpu
// backend, so the backward of every fast kernel users run is checked too.
void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const std::string& what,
               double tol = kGradcheckTol);
// The same under one backend only.
void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const std::string& what, double tol,
               Backend backend);

// Central differences in f64 under `backend` for leaves that fn reads (inputs made leaves by the
// caller, a module's parameters, an initial state): compares the analytic gradient of
// loss = sum(fn() * R) (R random, fixed) with finite differences for every element of every
// tensor in wrt, perturbing them in place. Every tensor in wrt must be an f64 contiguous leaf
// that requires grad. Use it to check the cpu kernels that users run, not only the oracle.
void gradcheck_leaves(const std::function<Tensor()>& fn, const std::vector<Tensor>& wrt,
                      const std::string& what, Backend backend, double tol = kGradcheckTol);

// Expects fn to throw rill::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts);

}  // namespace rill::testing
