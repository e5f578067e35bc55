// matmul: cpu against ref (outputs and gradients; f32 and f64; contiguous, transposed, gapped and
// broadcast operands; rank 1), both f32 GEMM providers, cpu::gemm itself against a double loop,
// f64 gradient checks, determinism, and the error messages for bad input.
#include <cmath>
#include <limits>

#include "rill/backend/cpu/gemm.h"
#include "rill/ops/matmul.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

// How an operand is laid out in memory: each reaches gemm by a different route.
enum class Layout { contiguous, transposed, gapped };

const char* layout_name(Layout l) {
  return l == Layout::contiguous ? "contiguous"
                                 : (l == Layout::transposed ? "transposed" : "gapped");
}

// gapped: a view with stride 2 along both matrix dims, so neither has unit stride and the cpu
// kernel must copy it.
Tensor make_input(const Shape& shape, DType dt, uint64_t seed, Layout layout) {
  if (layout == Layout::contiguous) return random(shape, dt, seed);
  if (layout == Layout::transposed) return random_strided(shape, dt, seed);
  Shape big = shape;
  const int64_t r = static_cast<int64_t>(shape.size());
  for (int64_t d = std::max<int64_t>(0, r - 2); d < r; ++d) big[d] = 2 * shape[d];
  Tensor t = random(big, dt, seed);
  for (int64_t d = std::max<int64_t>(0, r - 2); d < r; ++d) t = t.slice(d, 0, big[d], 2);
  return t;
}

struct Case {
  Shape a, b;
};

std::string describe(const Case& c, DType dt, Layout la, Layout lb) {
  return shape_str(c.a) + " x " + shape_str(c.b) + " " + dtype_name(dt) + " " + layout_name(la) +
         "/" + layout_name(lb);
}

const std::vector<Case> kCases = {
    {{1, 1}, {1, 1}},
    {{17, 33}, {33, 9}},
    {{3, 5}, {5, 4}},
    {{1, 6}, {6, 1}},
    {{4, 7, 5}, {5, 6}},          // shared b: one folded GEMM, folded db
    {{3, 8}, {2, 8, 5}},          // shared a
    {{2, 1, 3, 4}, {5, 4, 2}},    // both broadcast
    {{1, 6, 8}, {3, 8, 2}},       // size-1 batch dim
    {{16, 9, 12}, {16, 12, 10}},  // many small matrices: spread over threads
    {{7}, {7}},
    {{7}, {7, 3}},
    {{2, 5, 7}, {7}},
    {{7}, {4, 7, 3}},
    {{0, 3}, {3, 4}},
    {{3, 0}, {0, 4}},  // empty contraction: zeros
    {{2, 0, 3}, {3, 4}},
};

void check_case(const Case& c, DType dt, Layout la, Layout lb, uint64_t seed) {
  Tensor a = make_input(c.a, dt, seed, la), b = make_input(c.b, dt, seed + 1, lb);
  expect_backends_agree_with_grad(
      [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b},
      describe(c, dt, la, lb));
}

// Sets the f32 provider for a scope.
class ProviderGuard {
 public:
  explicit ProviderGuard(cpu::GemmProvider p) : prev_(cpu::gemm_provider()) {
    cpu::set_gemm_provider(p);
  }
  ~ProviderGuard() { cpu::set_gemm_provider(prev_); }

 private:
  cpu::GemmProvider prev_;
};

}  // namespace

TEST(Matmul, CpuMatchesRef) {
  uint64_t seed = 100;
  for (DType dt : {DType::f32, DType::f64})
    for (const Case& c : kCases)
      for (Layout la : {Layout::contiguous, Layout::transposed, Layout::gapped})
        for (Layout lb : {Layout::contiguous, Layout::transposed, Layout::gapped})
          check_case(c, dt, la, lb, seed += 2);
  // Matrices above the small-matrix threshold: 3 of them split unevenly over 2 threads, so they
  // run in turn with each GEMM threaded; 2 of them go one per thread. Fewer layouts, as the
  // reference is slow at this size.
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t nb : {2, 3})
      for (Layout l : {Layout::contiguous, Layout::transposed})
        check_case({{nb, 130, 140}, {nb, 140, 120}}, dt, l, Layout::contiguous, seed += 2);
}

TEST(Matmul, BroadcastViewsAsInputs) {
  // Stride-0 dims given directly: a batch dim, and a row dim inside the matrix (copied).
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = random({1, 5, 4}, dt, 1).expand({3, 5, 4});
    Tensor b = random({3, 4, 2}, dt, 2);
    expect_backends_agree_with_grad(
        [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b},
        "expanded batch");
    Tensor rows = random({1, 4}, dt, 3).expand({5, 4});
    expect_backends_agree_with_grad(
        [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
        {rows, random({4, 6}, dt, 4)}, "expanded rows");
  }
}

TEST(Matmul, BothProvidersMatchRef) {
  const std::vector<Case> cases = {{{17, 33}, {33, 9}},         {{4, 7, 5}, {5, 6}},
                                   {{16, 9, 12}, {16, 12, 10}}, {{3, 130, 140}, {3, 140, 120}},
                                   {{1, 64}, {64, 96}},         {{3, 0}, {0, 4}}};
  for (cpu::GemmProvider p : {cpu::GemmProvider::onednn, cpu::GemmProvider::openblas}) {
    ProviderGuard guard(p);
    ASSERT_EQ(cpu::gemm_provider(), p);
    uint64_t seed = 500;
    for (const Case& c : cases)
      for (Layout la : {Layout::contiguous, Layout::transposed})
        for (Layout lb : {Layout::contiguous, Layout::transposed}) {
          SCOPED_TRACE(cpu::gemm_provider_name(p));
          check_case(c, DType::f32, la, lb, seed += 2);
        }
  }
}

TEST(Matmul, ProviderNames) {
  EXPECT_STREQ(cpu::gemm_provider_name(cpu::GemmProvider::onednn), "onednn");
  EXPECT_STREQ(cpu::gemm_provider_name(cpu::GemmProvider::openblas), "openblas");
}

// cpu::gemm is public (other kernels call it): every transpose, padded leading dims, alpha and
// beta (beta == 0 must not read C, which starts as NaN), against a double-precision loop.
template <class T>
void check_gemm(uint64_t seed) {
  const DType dt = dtype_of<T>;
  const int64_t m = 13, n = 7, k = 19;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (double beta : {0.0, -1.3}) {
        const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
        const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
        const int64_t lda = a_cols + 3, ldb = b_cols + 1, ldc = n + 2;
        Tensor a = random({a_rows, lda}, dt, seed++), b = random({b_rows, ldb}, dt, seed++);
        Tensor c = random({m, ldc}, dt, seed++);
        if (beta == 0) c.fill_(std::numeric_limits<double>::quiet_NaN());
        std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
        std::vector<double> cv = c.to_vector<double>();
        const double alpha = 0.7;
        std::vector<double> expected(m * n);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double acc = 0;
            for (int64_t p = 0; p < k; ++p)
              acc += av[ta ? p * lda + i : i * lda + p] * bv[tb ? j * ldb + p : p * ldb + j];
            expected[i * n + j] = alpha * acc + (beta == 0 ? 0 : beta * cv[i * ldc + j]);
          }
        cpu::gemm(ta, tb, m, n, k, T(alpha), a.data<T>(), lda, b.data<T>(), ldb, T(beta),
                  c.data<T>(), ldc);
        Tensor got = c.slice(1, 0, n).contiguous().to(DType::f64);
        Tensor want = Tensor::from_vector<double>(expected, {m, n});
        EXPECT_TRUE(all_close(got, want, tolerance(dt)))
            << dtype_name(dt) << " trans_a " << ta << " trans_b " << tb << " beta " << beta;
      }
  // k == 0: C = beta * C, or zeros for beta == 0 even over NaN.
  Tensor c = Tensor::full({2, 3}, std::numeric_limits<double>::quiet_NaN(), dt);
  T dummy = 0;
  cpu::gemm(false, false, 2, 3, 0, T(1), &dummy, 1, &dummy, 3, T(0), c.data<T>(), 3);
  EXPECT_TRUE(all_close(c, Tensor::zeros({2, 3}, dt)));
  c.fill_(2.0);
  cpu::gemm(false, false, 2, 3, 0, T(1), &dummy, 1, &dummy, 3, T(0.5), c.data<T>(), 3);
  EXPECT_TRUE(all_close(c, Tensor::ones({2, 3}, dt)));
}

TEST(Gemm, MatchesDoubleLoop) {
  for (cpu::GemmProvider p : {cpu::GemmProvider::onednn, cpu::GemmProvider::openblas}) {
    ProviderGuard guard(p);
    SCOPED_TRACE(cpu::gemm_provider_name(p));
    check_gemm<float>(10);
    check_gemm<double>(20);
  }
}

TEST(Gemm, RejectsBadLeadingDims) {
  float x[16] = {};
  expect_error([&] { cpu::gemm(false, false, 2, 2, 3, 1.f, x, 2, x, 2, 0.f, x, 2); },
               {"[gemm]", "lda=2"});
}

TEST(Matmul, Gradcheck) {
  const std::vector<Case> cases = {
      {{3, 4}, {4, 5}}, {{2, 3, 4}, {4, 2}}, {{3, 4}, {2, 4, 2}}, {{2, 1, 3, 2}, {3, 2, 4}},
      {{4}, {4, 3}},    {{2, 3, 4}, {4}},    {{4}, {4}},          {{1, 1}, {1, 1}}};
  uint64_t seed = 900;
  // gradcheck perturbs contiguous copies of its inputs, so layouts are covered above instead.
  for (const Case& c : cases)
    gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
              {random(c.a, DType::f64, seed++), random(c.b, DType::f64, seed++)},
              describe(c, DType::f64, Layout::contiguous, Layout::contiguous));
}

// Bitwise repeatable at a fixed thread count. Not thread-invariant: both libraries may split the
// contraction differently with another thread count (oneDNN does for a [1, 65536] x [65536, 1]
// product, OpenBLAS for most shapes), so expect_thread_invariant does not apply to matmul.
// A repeatability check only (the same call twice gives the same bits); thread-count
// invariance is tested apart.
TEST(Matmul, RepeatableCallToCall) {
  for (const Case& c : {Case{{16, 9, 12}, {16, 12, 10}}, Case{{300, 200}, {200, 150}},
                        Case{{4, 50, 30}, {30, 20}}}) {
    Tensor a = random(c.a, DType::f32, 1), b = random(c.b, DType::f32, 2);
    EXPECT_TRUE(bitwise_equal(matmul(a, b), matmul(a, b)))
        << describe(c, DType::f32, Layout::contiguous, Layout::contiguous);
  }
}

TEST(Matmul, Errors) {
  const DType f = DType::f32;
  expect_error(
      [&] {
        matmul(random({2, 3}, f, 1), random({4, 5}, f, 2));
      },
      {"[matmul]", "[2, 3]", "[4, 5]"});
  expect_error(
      [&] {
        matmul(random({2, 3, 4}, f, 1), random({5, 4, 6}, f, 2));
      },
      {"[matmul]", "[2, 3, 4]", "[5, 4, 6]"});
  expect_error([&] { matmul(random({3}, f, 1), random({4}, f, 2)); }, {"[matmul]", "[3]", "[4]"});
  expect_error(
      [&] {
        matmul(random({2, 3}, f, 1), random({3, 4}, DType::f64, 2));
      },
      {"[matmul]", "f32", "f64", "[2, 3]", "[3, 4]"});
  expect_error(
      [&] {
        matmul(Tensor::arange(6).view({2, 3}), Tensor::arange(6).view({3, 2}));
      },
      {"[matmul]", "i64", "[2, 3]", "[3, 2]"});
  expect_error(
      [&] {
        matmul(Tensor::scalar(2.0), random({3, 4}, f, 2));
      },
      {"[matmul]", "[]", "[3, 4]"});
  expect_error([&] { matmul(Tensor(), random({3, 4}, f, 2)); }, {"[matmul]", "undefined"});
}
