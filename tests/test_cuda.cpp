// CUDA backend tests. In a CPU-only build: the stubs fail clearly, naming RILL_CUDA. In a CUDA
// build without a device: the tests that need one skip (saying why) and the error paths are
// checked. With a device: sgemm (every transpose pair, odd sizes, padded strides) against a
// double triple loop, and add_f32 against the cpu add, within the f32 tolerance.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "rill/backend/cuda/cuda.h"
#include "rill/ops/elementwise.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

// require()'s message is the reason there is no device; it goes into every skip.
std::string why_no_device() {
  try {
    cuda::require();
  } catch (const Error& e) {
    return e.what();
  }
  return "require() did not throw";
}

#define RILL_SKIP_WITHOUT_DEVICE() \
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device to run on: " << why_no_device()

std::vector<float> random_floats(int64_t n, uint64_t seed) {
  return Tensor::randn({n}, seed, DType::f32).to_vector<float>();
}

// Host vector -> new device buffer of the same size.
template <class T>
cuda::DeviceBuffer to_device(const std::vector<T>& v) {
  cuda::DeviceBuffer buf(v.size() * sizeof(T));
  buf.copy_from_host(v.data(), v.size() * sizeof(T));
  return buf;
}

template <class T>
std::vector<T> to_host(const cuda::DeviceBuffer& buf) {
  std::vector<T> v(buf.bytes() / sizeof(T));
  buf.copy_to_host(v.data(), buf.bytes());
  return v;
}

}  // namespace

TEST(Cuda, RequireAgreesWithAvailable) {
  if (cuda::available()) {
    EXPECT_NO_THROW(cuda::require());
    EXPECT_GT(cuda::device_count(), 0);
  } else {
    expect_error([] { cuda::require(); }, {"[cuda]"});
    EXPECT_EQ(cuda::device_count(), 0);
  }
}

#ifndef RILL_WITH_CUDA

TEST(CudaStub, FailsClearlyNamingTheBuildOption) {
  EXPECT_FALSE(cuda::available());
  EXPECT_EQ(cuda::device_count(), 0);
  const std::vector<std::string> parts = {"[cuda]", "built without CUDA", "-DRILL_CUDA=ON"};
  expect_error([] { cuda::require(); }, parts);
  expect_error([] { cuda::DeviceBuffer buf(64); }, parts);
  expect_error([] { cuda::synchronize(); }, parts);
  expect_error(
      [] { cuda::sgemm(false, false, 2, 2, 2, 1.f, nullptr, 2, nullptr, 2, 0.f, nullptr, 2); },
      parts);
  expect_error([] { cuda::add_f32(nullptr, nullptr, nullptr, 4); }, parts);
}

#else  // RILL_WITH_CUDA

TEST(CudaBuild, NoDeviceGivesClearErrors) {
  if (cuda::available()) GTEST_SKIP() << "a device is present; this checks the no-device errors";
  expect_error([] { cuda::require(); }, {"[cuda]", "device"});
  // An empty buffer touches no device; a real one reports the failing call and the runtime's text.
  EXPECT_NO_THROW(cuda::DeviceBuffer(0));
  expect_error([] { cuda::DeviceBuffer buf(64); }, {"[cuda] cudaMalloc failed: "});
}

TEST(CudaBuild, ArgumentsAreValidatedBeforeTheDevice) {
  expect_error(
      [] { cuda::sgemm(false, false, 4, 5, 6, 1.f, nullptr, 5, nullptr, 5, 0.f, nullptr, 5); },
      {"[cuda.sgemm]", "lda=5", "needs >= 6"});
  expect_error(
      [] { cuda::sgemm(true, true, 4, 5, 6, 1.f, nullptr, 4, nullptr, 6, 0.f, nullptr, 4); },
      {"[cuda.sgemm]", "ldc=4", "needs >= 5"});
  expect_error(
      [] { cuda::sgemm(false, false, -1, 5, 6, 1.f, nullptr, 6, nullptr, 5, 0.f, nullptr, 5); },
      {"[cuda.sgemm]", "m=-1"});
  expect_error([] { cuda::add_f32(nullptr, nullptr, nullptr, -3); }, {"[cuda.add_f32]", "-3"});
}

#endif  // RILL_WITH_CUDA

TEST(CudaDevice, BufferRoundTrip) {
  RILL_SKIP_WITHOUT_DEVICE();
  const std::vector<float> v = random_floats(1001, 11);
  cuda::DeviceBuffer buf = to_device(v);
  EXPECT_EQ(buf.bytes(), v.size() * sizeof(float));
  cuda::DeviceBuffer moved = std::move(buf);
  EXPECT_EQ(buf.data(), nullptr);
  EXPECT_EQ(to_host<float>(moved), v);
  expect_error([&] { moved.copy_from_host(v.data(), moved.bytes() + 4); },
               {"[cuda.copy_from_host]"});
}

TEST(CudaDevice, AddF32MatchesCpu) {
  RILL_SKIP_WITHOUT_DEVICE();
  // Odd sizes; the last exceeds 65536 blocks of 256 threads, so the grid-stride loop is used.
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{100003}, int64_t{65536} * 256 + 1001}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const Tensor a = Tensor::randn({n}, 100 + n, DType::f32);
    const Tensor b = Tensor::randn({n}, 200 + n, DType::f32);
    const Tensor expected = a + b;  // rill's cpu add
    cuda::DeviceBuffer da = to_device(a.to_vector<float>());
    cuda::DeviceBuffer db = to_device(b.to_vector<float>());
    // Outputs start as NaN so an unwritten element cannot pass.
    cuda::DeviceBuffer dout =
        to_device(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
    cuda::add_f32(da.data_as<float>(), db.data_as<float>(), dout.data_as<float>(), n);
    cuda::synchronize();
    EXPECT_TRUE(
        all_close(Tensor::from_vector(to_host<float>(dout), {n}), expected, tolerance(DType::f32)));
    // In place: a += b.
    cuda::add_f32(da.data_as<float>(), db.data_as<float>(), da.data_as<float>(), n);
    EXPECT_TRUE(
        all_close(Tensor::from_vector(to_host<float>(da), {n}), expected, tolerance(DType::f32)));
  }
  cuda::add_f32(nullptr, nullptr, nullptr, 0);  // nothing to do, no launch
}

namespace {

struct GemmCase {
  int64_t m, n, k;
  float alpha, beta;
};

// One sgemm on the device against a double triple loop: A, B and C are row-major with padded
// row strides, C's padding must stay untouched, and with beta 0 C starts as NaN.
void check_sgemm(bool trans_a, bool trans_b, const GemmCase& g, uint64_t seed) {
  SCOPED_TRACE("trans_a=" + std::to_string(trans_a) + " trans_b=" + std::to_string(trans_b) +
               " m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) +
               " k=" + std::to_string(g.k) + " beta=" + std::to_string(g.beta));
  const int64_t a_rows = trans_a ? g.k : g.m, a_cols = trans_a ? g.m : g.k;
  const int64_t b_rows = trans_b ? g.n : g.k, b_cols = trans_b ? g.k : g.n;
  const int64_t lda = a_cols + 3, ldb = b_cols + 1, ldc = g.n + 2;
  const std::vector<float> a = random_floats(a_rows * lda, seed);
  const std::vector<float> b = random_floats(b_rows * ldb, seed + 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> c(g.m * ldc, nan);
  if (g.beta != 0) {
    const std::vector<float> r = random_floats(g.m * ldc, seed + 2);
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t j = 0; j < g.n; ++j) c[i * ldc + j] = r[i * ldc + j];
  }

  std::vector<double> expected(g.m * g.n);
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < g.k; ++p) {
        const double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      expected[i * g.n + j] = g.alpha * s + (g.beta != 0 ? g.beta * double(c[i * ldc + j]) : 0.0);
    }

  cuda::DeviceBuffer da = to_device(a), db = to_device(b), dc = to_device(c);
  cuda::sgemm(trans_a, trans_b, g.m, g.n, g.k, g.alpha, da.data_as<float>(), lda,
              db.data_as<float>(), ldb, g.beta, dc.data_as<float>(), ldc);
  const std::vector<float> out = to_host<float>(dc);

  std::vector<float> actual(g.m * g.n);
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) actual[i * g.n + j] = out[i * ldc + j];
    for (int64_t j = g.n; j < ldc; ++j)
      EXPECT_TRUE(std::isnan(out[i * ldc + j]))
          << "padding of C written at (" << i << ", " << j << ")";
  }
  EXPECT_TRUE(all_close(Tensor::from_vector(actual, {g.m, g.n}),
                        Tensor::from_vector(expected, {g.m, g.n}), tolerance(DType::f32)));
}

}  // namespace

TEST(CudaDevice, SgemmMatchesTripleLoop) {
  RILL_SKIP_WITHOUT_DEVICE();
  const std::vector<GemmCase> cases = {
      {1, 1, 1, 1.f, 0.f},      {7, 5, 3, 1.f, 0.f},    {37, 53, 29, 1.5f, 0.f},
      {129, 65, 257, 1.f, 0.f}, {33, 1, 71, 0.5f, 0.f}, {1, 97, 45, 1.f, 0.f},
      {31, 47, 19, -1.f, 0.5f}, {64, 63, 1, 2.f, -1.f},
  };
  uint64_t seed = 1000;
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (const GemmCase& g : cases) check_sgemm(trans_a, trans_b, g, seed += 10);
}
