// Scans: cpu against ref (shapes, dims, both directions, strided inputs; f32 and f64), f64
// gradient checks, reverse as flip-scan-flip, stability for large and -inf inputs, bad input.
#include <omp.h>

#include <cmath>
#include <limits>

#include "rill/ops/scan.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

using ScanFn = Tensor (*)(const Tensor&, int64_t, bool);

struct ScanOp {
  const char* name;
  ScanFn fn;
};
const ScanOp kOps[] = {{"cumsum", cumsum}, {"logcumsumexp", logcumsumexp}};

struct Case {
  Shape shape;
  int64_t dim;
};
// Lines adjacent in memory (inner > 1, more than one tile of 256), lines as rows (inner == 1,
// more than one tile of 64 rows), and sizes large enough for the parallel path.
const std::vector<Case> kCases = {
    {{7}, 0},          {{5, 9}, 0},       {{5, 9}, 1},    {{5, 9}, -1},     {{3, 4, 6}, 1},
    {{3, 4, 6}, 0},    {{2, 40, 520}, 1}, {{600, 60}, 1}, {{130, 3, 2}, 0}, {{70, 600}, 0},
    {{2, 3, 300}, -1}, {{1, 1, 5}, 2},    {{6, 1}, 1}};

// x reversed along dim, element by element.
Tensor flip(const Tensor& x, int64_t dim) {
  const Shape& s = x.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= s[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= s[d];
  const int64_t n = s[dim];
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  for (int64_t a = 0; a < outer; ++a)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t b = 0; b < inner; ++b)
        out[(a * n + j) * inner + b] = v[(a * n + (n - 1 - j)) * inner + b];
  return Tensor::from_vector(out, s).to(x.dtype());
}

// log sum_{i <= j} exp(x_i) along the last dim of a 2-D tensor, shifted by the prefix max, in
// long double.
Tensor direct_logcumsumexp(const Tensor& x) {
  const int64_t rows = x.shape()[0], n = x.shape()[1];
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      long double m = -INFINITY;
      for (int64_t i = 0; i <= j; ++i) m = std::max<long double>(m, v[r * n + i]);
      if (std::isinf(m) && m < 0) {
        out[r * n + j] = -INFINITY;
        continue;
      }
      long double s = 0;
      for (int64_t i = 0; i <= j; ++i) s += std::exp(static_cast<long double>(v[r * n + i]) - m);
      out[r * n + j] = static_cast<double>(m + std::log(s));
    }
  return Tensor::from_vector(out, x.shape()).to(x.dtype());
}

bool any_nan(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (std::isnan(v)) return true;
  return false;
}

}  // namespace

TEST(Scan, CpuMatchesRef) {
  for (const ScanOp& op : kOps)
    for (DType dt : {DType::f32, DType::f64})
      for (const Case& c : kCases)
        for (bool reverse : {false, true})
          for (bool strided : {false, true}) {
            Tensor x = strided ? random_strided(c.shape, dt, 3) : random(c.shape, dt, 3);
            expect_backends_agree_with_grad(
                [&](const std::vector<Tensor>& in) { return op.fn(in[0], c.dim, reverse); }, {x},
                fmt::format("{} {} {} dim {} reverse {} strided {}", op.name, dtype_name(dt),
                            shape_str(c.shape), c.dim, reverse, strided));
          }
}

TEST(Scan, CumsumIntegersMatchByHand) {
  for (DType dt : {DType::i32, DType::i64}) {
    Tensor x = Tensor::randint({3, 5}, -20, 20, 9, dt);
    std::vector<int64_t> v = x.to_vector<int64_t>(), fwd(15), rev(15);
    for (int64_t r = 0; r < 3; ++r) {
      int64_t acc = 0;
      for (int64_t j = 0; j < 5; ++j) fwd[r * 5 + j] = acc += v[r * 5 + j];
      acc = 0;
      for (int64_t j = 4; j >= 0; --j) rev[r * 5 + j] = acc += v[r * 5 + j];
    }
    for (Backend b : {Backend::ref, Backend::cpu}) {
      BackendGuard g(b);
      EXPECT_EQ(cumsum(x, 1).to_vector<int64_t>(), fwd) << backend_name(b);
      EXPECT_EQ(cumsum(x, 1, true).to_vector<int64_t>(), rev) << backend_name(b);
    }
  }
}

TEST(Scan, Gradcheck) {
  for (const ScanOp& op : kOps)
    for (const Case& c : std::vector<Case>{{{6}, 0}, {{4, 5}, 0}, {{4, 5}, 1}, {{3, 2, 4}, 1}})
      for (bool reverse : {false, true}) {
        Tensor x = random(c.shape, DType::f64, 21);
        gradcheck(
            [&](const std::vector<Tensor>& in) { return op.fn(in[0], c.dim, reverse); }, {x},
            fmt::format("{} {} dim {} reverse {}", op.name, shape_str(c.shape), c.dim, reverse));
      }
}

TEST(Scan, ReverseIsFlipScanFlip) {
  for (const ScanOp& op : kOps)
    for (DType dt : {DType::f32, DType::f64})
      for (const Case& c : std::vector<Case>{{{9}, 0}, {{5, 7}, 0}, {{5, 7}, 1}, {{3, 4, 6}, 1}})
        for (Backend b : {Backend::ref, Backend::cpu}) {
          BackendGuard g(b);
          Tensor x = random(c.shape, dt, 5);
          EXPECT_TRUE(
              all_close(op.fn(x, c.dim, true), flip(op.fn(flip(x, c.dim), c.dim, false), c.dim)))
              << op.name << " " << dtype_name(dt) << " " << shape_str(c.shape) << " dim " << c.dim
              << " " << backend_name(b);
        }
}

TEST(Scan, CumsumMatchesPrefixSums) {
  Tensor x = random({4, 11}, DType::f64, 8);
  std::vector<double> v = x.to_vector<double>(), e(v.size());
  for (int64_t r = 0; r < 4; ++r) {
    double acc = 0;
    for (int64_t j = 0; j < 11; ++j) e[r * 11 + j] = acc += v[r * 11 + j];
  }
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    EXPECT_TRUE(all_close(cumsum(x, 1), Tensor::from_vector(e, {4, 11}))) << backend_name(b);
  }
}

TEST(Scan, LogcumsumexpLargeInputsAreStable) {
  for (DType dt : {DType::f32, DType::f64})
    for (Backend b : {Backend::ref, Backend::cpu}) {
      BackendGuard g(b);
      Tensor x = random_uniform({4, 50}, dt, 13, -500, 500);
      Tensor y = logcumsumexp(x, 1);
      for (double v : y.to_vector<double>()) ASSERT_TRUE(std::isfinite(v)) << backend_name(b);
      EXPECT_TRUE(all_close(y, direct_logcumsumexp(x))) << dtype_name(dt) << " " << backend_name(b);
    }
}

// The fused backward against its definition dx_j = sum_{i >= j} dy_i exp(x_j - y_i), with
// inputs of +-500 where a naive exp would overflow.
TEST(Scan, LogcumsumexpGradientMatchesDefinition) {
  const int64_t rows = 3, n = 40;
  Tensor x0 = random_uniform({rows, n}, DType::f64, 17, -500, 500);
  Tensor dy = random({rows, n}, DType::f64, 18);
  std::vector<double> xv = x0.to_vector<double>(), gv = dy.to_vector<double>();
  std::vector<double> yv = direct_logcumsumexp(x0).to_vector<double>(), e(xv.size(), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = j; i < n; ++i)
        e[r * n + j] += gv[r * n + i] * std::exp(xv[r * n + j] - yv[r * n + i]);
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    Tensor x = x0.clone();
    x.set_requires_grad(true);
    logcumsumexp(x, 1).backward(dy);
    EXPECT_TRUE(all_close(x.grad(), Tensor::from_vector(e, {rows, n}))) << backend_name(b);
  }
}

TEST(Scan, LogcumsumexpNegativeInfinityGivesNoNan) {
  const double inf = std::numeric_limits<double>::infinity();
  // Leading -inf, -inf in the middle, an all -inf row, and -inf after a finite prefix.
  std::vector<double> v = {-inf, -inf, 0.5,  -inf, 1.0,  -2.0,  //
                           -inf, -inf, -inf, -inf, -inf, -inf,  //
                           0.3,  -inf, -inf, 2.0,  -inf, -1.0};
  for (DType dt : {DType::f32, DType::f64})
    for (bool reverse : {false, true}) {
      Tensor x = Tensor::from_vector(v, {3, 6}).to(dt);
      for (Backend b : {Backend::ref, Backend::cpu}) {
        BackendGuard g(b);
        Tensor xl = x.clone();
        xl.set_requires_grad(true);
        Tensor y = logcumsumexp(xl, 1, reverse);
        EXPECT_FALSE(any_nan(y)) << backend_name(b);
        Tensor expected =
            reverse ? flip(direct_logcumsumexp(flip(x, 1)), 1) : direct_logcumsumexp(x);
        EXPECT_TRUE(all_close(y, expected)) << dtype_name(dt) << " " << backend_name(b);
        y.backward(random({3, 6}, dt, 2));
        EXPECT_FALSE(any_nan(xl.grad())) << backend_name(b);
        std::vector<double> gv = xl.grad().to_vector<double>();
        for (size_t i = 0; i < v.size(); ++i)
          if (std::isinf(v[i])) {
            EXPECT_EQ(gv[i], 0.0) << "element " << i << " " << backend_name(b);
          }
      }
      expect_backends_agree_with_grad(
          [&](const std::vector<Tensor>& in) { return logcumsumexp(in[0], 1, reverse); }, {x},
          "logcumsumexp with -inf");
    }
}

TEST(Scan, BadInput) {
  Tensor x = random({4, 3}, DType::f32, 1);
  expect_error([&] { cumsum(x, 2); }, {"cumsum", "dim 2"});
  expect_error([&] { logcumsumexp(x, -3); }, {"logcumsumexp", "dim -3"});
  expect_error(
      [&] {
        logcumsumexp(Tensor::randint({4, 3}, 0, 5, 1), 0);
      },
      {"logcumsumexp", "i64", "[4, 3]"});
}

TEST(Scan, SameResultsForOneAndTwoThreads) {
  const int saved = omp_get_max_threads();
  for (const ScanOp& op : kOps)
    for (const Case& c : std::vector<Case>{{{3, 50, 600}, 1}, {{700, 80}, 1}}) {
      Tensor x = random(c.shape, DType::f32, 31), dy = random(c.shape, DType::f32, 32);
      std::vector<Tensor> out[2];
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        Tensor xl = x.detach();
        xl.set_requires_grad(true);
        Tensor y = op.fn(xl, c.dim, true);
        y.backward(dy);
        out[threads - 1] = {y.detach(), xl.grad()};
      }
      for (size_t i = 0; i < 2; ++i)
        EXPECT_TRUE(bitwise_equal(out[0][i], out[1][i])) << op.name << " " << shape_str(c.shape);
    }
  omp_set_num_threads(saved);
}
