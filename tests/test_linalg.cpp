// solve (rill/ops/linalg.h): the LAPACK kernel (cpu) against our Gaussian elimination (ref) for
// outputs and gradients, f32 and f64, matrix and vector right-hand sides; the residual a x - b;
// f64 central differences under both backends; gradients of one operand at a time; strided and
// gapped inputs; the one-dimensional and empty edge cases; singular matrices as errors under
// both backends; and the errors for bad shapes and dtypes.
#include <cmath>
#include <vector>

#include "rill/ops/elementwise.h"
#include "rill/ops/linalg.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

constexpr DType f32 = DType::f32, f64 = DType::f64;

// n x n identity, contiguous.
Tensor eye(int64_t n, DType dt) {
  std::vector<double> v(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  return Tensor::from_vector<double>(v, {n, n}).to(dt);
}

// A random [n, n] matrix plus n I: diagonally dominant on average, so well conditioned and the
// two kernels' different operation orders stay within the dtype's tolerance.
Tensor well_conditioned(int64_t n, DType dt, uint64_t seed) {
  return add(random({n, n}, dt, seed), mul(eye(n, dt), double(n)));
}

// The same values reached through a transposed view and through a stride-2 (gapped) view.
Tensor transposed_view(const Tensor& a) { return a.transpose(0, 1).contiguous().transpose(0, 1); }
Tensor gapped_view(const Tensor& t) {
  Tensor big = Tensor::zeros({2 * t.size(0), 2 * t.size(1)}, t.dtype());
  Tensor view = big.slice(0, 0, 2 * t.size(0), 2).slice(1, 0, 2 * t.size(1), 2);
  view.copy_(t);
  return view;
}

}  // namespace

TEST(Solve, BackendsAgree) {
  for (DType dt : {f32, f64})
    for (auto [n, m] :
         std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 2}, {17, 5}, {64, 33}}) {
      Tensor a = well_conditioned(n, dt, 10 + n), b = random({n, m}, dt, 20 + m);
      expect_backends_agree([&] { return std::vector<Tensor>{solve(a, b)}; },
                            fmt::format("solve {}x{} m {} {}", n, n, m, dtype_name(dt)));
      expect_backends_agree([&] { return std::vector<Tensor>{solve(a, b.select(1, 0))}; },
                            fmt::format("solve vector rhs n {} {}", n, dtype_name(dt)));
    }
}

TEST(Solve, BackendsAgreeWithGrad) {
  for (DType dt : {f32, f64}) {
    expect_backends_agree_with_grad(
        [](const std::vector<Tensor>& in) { return solve(in[0], in[1]); },
        {well_conditioned(9, dt, 1), random({9, 4}, dt, 2)},
        fmt::format("solve grad {}", dtype_name(dt)));
    expect_backends_agree_with_grad(
        [](const std::vector<Tensor>& in) { return solve(in[0], in[1]); },
        {well_conditioned(6, dt, 3), random({6}, dt, 4)},
        fmt::format("solve grad vector rhs {}", dtype_name(dt)));
  }
}

// The definition itself, independent of either kernel: a x reproduces b.
TEST(Solve, ResidualIsSmall) {
  for (Backend be : {Backend::ref, Backend::cpu})
    for (DType dt : {f32, f64}) {
      BackendGuard guard(be);
      Tensor a = well_conditioned(40, dt, 5), b = random({40, 7}, dt, 6);
      Tensor x = solve(a, b);
      EXPECT_EQ(x.shape(), Shape({40, 7}));
      EXPECT_TRUE(all_close(matmul(a, x), b)) << backend_name(be) << " " << dtype_name(dt);
      Tensor xv = solve(a, b.select(1, 3));
      EXPECT_EQ(xv.shape(), Shape({40}));
      EXPECT_TRUE(all_close(matmul(a, xv), b.select(1, 3))) << backend_name(be);
    }
}

// A matrix that needs row exchanges (zero leading entry): partial pivoting must happen.
TEST(Solve, NeedsPivoting) {
  Tensor a = Tensor::from_vector<double>({0, 2, 1, 1, 1, 0, 3, 0, 1}, {3, 3});
  Tensor x_true = Tensor::from_vector<double>({1, -2, 3}, {3});
  Tensor b = matmul(a, x_true);
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(be);
    EXPECT_TRUE(all_close(solve(a, b), x_true)) << backend_name(be);
  }
}

TEST(Solve, Gradcheck) {
  gradcheck([](const std::vector<Tensor>& in) { return solve(in[0], in[1]); },
            {well_conditioned(5, f64, 7), random({5, 3}, f64, 8)}, "solve");
  gradcheck([](const std::vector<Tensor>& in) { return solve(in[0], in[1]); },
            {well_conditioned(4, f64, 9), random({4}, f64, 10)}, "solve vector rhs");
  // An unsymmetric matrix far from diagonal dominance (pivoting reorders rows).
  gradcheck([](const std::vector<Tensor>& in) { return solve(in[0], in[1]); },
            {random({4, 4}, f64, 11), random({4, 2}, f64, 12)}, "solve general");
}

// Only one operand requiring grad: the backward must give exactly its gradient.
TEST(Solve, GradOfOneOperand) {
  Tensor a0 = well_conditioned(5, f64, 13), b0 = random({5, 2}, f64, 14);
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(be);
    Tensor a = a0.clone().set_requires_grad(true), b = b0.clone().set_requires_grad(true);
    sum(solve(a0, b)).backward();
    sum(solve(a, b0)).backward();
    // With L = sum(x): gb = a^{-T} 1, ga = -gb x^T.
    Tensor ones = Tensor::ones({5, 2}, f64);
    Tensor gb = solve(a0.transpose(0, 1), ones);
    EXPECT_TRUE(all_close(b.grad(), gb)) << backend_name(be);
    EXPECT_TRUE(all_close(a.grad(), neg(matmul(gb, solve(a0, b0).transpose(0, 1)))))
        << backend_name(be);
  }
}

TEST(Solve, StridedInputs) {
  for (DType dt : {f32, f64}) {
    Tensor a = well_conditioned(8, dt, 15), b = random({8, 3}, dt, 16);
    Tensor expected;
    {
      BackendGuard guard(Backend::ref);
      expected = solve(a, b);
    }
    for (Backend be : {Backend::ref, Backend::cpu}) {
      BackendGuard guard(be);
      Tensor at = transposed_view(a), ag = gapped_view(a);
      Tensor bt = transposed_view(b), bg = gapped_view(b);
      ASSERT_FALSE(at.is_contiguous() || ag.is_contiguous() || bt.is_contiguous() ||
                   bg.is_contiguous());
      EXPECT_TRUE(all_close(solve(at, bg), expected)) << backend_name(be);
      EXPECT_TRUE(all_close(solve(ag, bt), expected)) << backend_name(be);
      // A strided vector right-hand side (column 1 of b: stride 3).
      EXPECT_TRUE(all_close(solve(a, b.select(1, 1)), expected.select(1, 1))) << backend_name(be);
    }
    // Gradients reach strided leaves too.
    expect_backends_agree_with_grad(
        [](const std::vector<Tensor>& in) { return solve(in[0], in[1]); },
        {transposed_view(a), gapped_view(b)}, fmt::format("solve strided {}", dtype_name(dt)));
  }
}

TEST(Solve, EmptyAndOneByOne) {
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(be);
    EXPECT_EQ(solve(Tensor::zeros({0, 0}, f64), Tensor::zeros({0, 3}, f64)).shape(), Shape({0, 3}));
    EXPECT_EQ(solve(eye(3, f64), Tensor::zeros({3, 0}, f64)).shape(), Shape({3, 0}));
    Tensor x = solve(Tensor::full({1, 1}, 4.0, f64), Tensor::full({1, 2}, 2.0, f64));
    EXPECT_EQ(x.to_vector<double>(), std::vector<double>({0.5, 0.5})) << backend_name(be);
  }
}

// Exactly singular matrices: both kernels must stop at the zero pivot and the op must say so.
TEST(Solve, SingularIsAnError) {
  // Rank 1: after one elimination step the second pivot is exactly 0.
  const Tensor rank1 = Tensor::from_vector<double>({1, 2, 2, 4}, {2, 2});
  // Column 2 zero: every update of it is 0 - f * 0, so the third pivot is exactly 0 in any
  // operation order. (Two equal rows are not used: LAPACK's blocked LU need not cancel them to
  // an exact 0, and a tiny nonzero pivot is not detected; see rill/ops/linalg.h.)
  Tensor zero_col = random({5, 5}, f64, 17).clone();
  zero_col.select(1, 2).fill_(0.0);
  for (Backend be : {Backend::ref, Backend::cpu})
    for (DType dt : {f32, f64}) {
      BackendGuard guard(be);
      SCOPED_TRACE(fmt::format("{} {}", backend_name(be), dtype_name(dt)));
      const std::vector<std::string> parts = {"[solve]", "singular", "pivot"};
      expect_error([&] { solve(rank1.to(dt), Tensor::ones({2, 1}, dt)); }, parts);
      expect_error([&] { solve(Tensor::zeros({3, 3}, dt), Tensor::ones({3}, dt)); }, parts);
      expect_error(
          [&] {
            solve(zero_col.to(dt), Tensor::ones({5, 2}, dt));
          },
          {"[solve]", "singular", "pivot 3 of"});
    }
}

TEST(Solve, BadInputIsAnError) {
  Tensor a = well_conditioned(3, f64, 18), b = random({3, 2}, f64, 19);
  expect_error([&] { solve(random({3, 4}, f64, 1), b); }, {"[solve]", "square", "[3, 4]"});
  expect_error([&] { solve(random({3}, f64, 1), b); }, {"[solve]", "square", "[3]"});
  expect_error([&] { solve(random({2, 3, 3}, f64, 1), b); }, {"[solve]", "square"});
  expect_error([&] { solve(a, random({4, 2}, f64, 1)); }, {"[solve]", "n = 3", "[4, 2]"});
  expect_error([&] { solve(a, random({4}, f64, 1)); }, {"[solve]", "n = 3", "[4]"});
  expect_error([&] { solve(a, random({3, 2, 1}, f64, 1)); }, {"[solve]", "[n, m]", "[3, 2, 1]"});
  expect_error([&] { solve(a, Tensor::scalar(1.0, f64)); }, {"[solve]", "b must be"});
  expect_error([&] { solve(a.to(f32), b); }, {"[solve]", "one dtype", "f32", "f64"});
  expect_error(
      [&] {
        solve(Tensor::zeros({3, 3}, DType::i64), Tensor::zeros({3}, DType::i64));
      },
      {"[solve]", "f32 or f64", "i64"});
  expect_error([&] { solve(Tensor(), b); }, {"solve", "a"});
  expect_error([&] { solve(a, Tensor()); }, {"solve", "b"});
}
