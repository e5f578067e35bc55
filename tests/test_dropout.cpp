// Dropout: cpu against ref, f64 gradient check, the same mask for 1 and 2 threads, the kept
// fraction, the backward's mask, the generator's offsets, eval mode, and bad p.
#include <omp.h>

#include <cmath>

#include "rill/ops/dropout.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

const std::vector<Shape> kShapes = {{7}, {3, 5}, {64, 130}, {2, 300, 70}};

// Restores OpenMP's thread count when a test changes it.
struct ThreadCountGuard {
  int saved = omp_get_max_threads();
  ~ThreadCountGuard() { omp_set_num_threads(saved); }
};

}  // namespace

TEST(Dropout, CpuMatchesRef) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Shape& s : kShapes)
      for (bool strided : {false, true})
        for (double p : {0.1, 0.5}) {
          Tensor x = strided ? random_strided(s, dt, 4) : random(s, dt, 4);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) {
                Generator gen(99);  // fresh per run: both backends draw the same counters
                return dropout(in[0], p, gen);
              },
              {x},
              fmt::format("dropout {} {} p {} strided {}", dtype_name(dt), shape_str(s), p,
                          strided));
        }
}

TEST(Dropout, Gradcheck) {
  Tensor x = random({3, 4}, DType::f64, 6);
  gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator gen(7);
        return dropout(in[0], 0.3, gen);
      },
      {x}, "dropout");
}

TEST(Dropout, SameMaskForOneAndTwoThreads) {
  ThreadCountGuard restore;
  Tensor x = random({1 << 18}, DType::f32, 8);
  Tensor y[2];
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    Generator gen(123);
    gen.advance(5);  // a non-zero starting offset
    y[threads - 1] = dropout(x, 0.4, gen);
  }
  EXPECT_TRUE(bitwise_equal(y[0], y[1]));
  BackendGuard g(Backend::ref);
  Generator gen(123);
  gen.advance(5);
  EXPECT_TRUE(bitwise_equal(dropout(x, 0.4, gen), y[0]));
}

TEST(Dropout, KeptFractionAndScale) {
  const int64_t n = 1 << 20;
  for (double p : {0.1, 0.5, 0.9}) {
    Tensor x = random({n}, DType::f64, 10);
    Generator gen(11);
    std::vector<double> xv = x.to_vector<double>(), yv = dropout(x, p, gen).to_vector<double>();
    int64_t kept = 0;
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (yv[i] == 0) continue;
      ++kept;
      worst = std::max(worst, std::abs(yv[i] - xv[i] / (1 - p)) / std::abs(xv[i] / (1 - p)));
    }
    // Five standard deviations of a binomial proportion.
    const double sigma = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(static_cast<double>(kept) / n, 1 - p, 5 * sigma) << "p " << p;
    EXPECT_LE(worst, tolerance(DType::f64)) << "kept values are x / (1 - p), p " << p;
  }
}

TEST(Dropout, BackwardUsesTheSameMask) {
  for (Backend b : {Backend::ref, Backend::cpu})
    for (DType dt : {DType::f32, DType::f64}) {
      BackendGuard guard(b);
      const double p = 0.3;
      Tensor x = random({50, 41}, dt, 12);
      x.set_requires_grad(true);
      Tensor dy = random({50, 41}, dt, 13);
      Generator gen(14);
      Tensor y = dropout(x, p, gen);
      y.backward(dy);
      std::vector<double> yv = y.to_vector<double>(), gv = dy.to_vector<double>(), e(yv.size());
      const double scale = dt == DType::f32 ? static_cast<float>(1 / (1 - p)) : 1 / (1 - p);
      for (size_t i = 0; i < yv.size(); ++i) e[i] = yv[i] != 0 ? gv[i] * scale : 0.0;
      EXPECT_TRUE(all_close(x.grad(), Tensor::from_vector(e, {50, 41}).to(dt)))
          << backend_name(b) << " " << dtype_name(dt);
      std::vector<double> dv = x.grad().to_vector<double>();
      for (size_t i = 0; i < yv.size(); ++i)
        if (yv[i] == 0) {
          ASSERT_EQ(dv[i], 0.0) << "element " << i;
        }
    }
}

TEST(Dropout, GeneratorAdvancesAndMasksDiffer) {
  Tensor x = random({1000}, DType::f32, 15);
  Generator gen(16);
  std::vector<float> a = dropout(x, 0.5, gen).to_vector<float>();
  EXPECT_EQ(gen.offset(), 1000u);
  std::vector<float> b = dropout(x, 0.5, gen).to_vector<float>();
  EXPECT_EQ(gen.offset(), 2000u);
  EXPECT_NE(a, b);
  gen.set_state(16, 1000);  // replaying the state replays the mask
  EXPECT_EQ(dropout(x, 0.5, gen).to_vector<float>(), b);
}

TEST(Dropout, EvalModeAndZeroPAreIdentity) {
  Tensor x = random({4, 3}, DType::f32, 17);
  Generator gen(18);
  EXPECT_TRUE(dropout(x, 0.5, gen, false).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0, gen).is_same(x));
  EXPECT_EQ(gen.offset(), 0u);
}

TEST(Dropout, BadInput) {
  Tensor x = random({4, 3}, DType::f32, 19);
  Generator gen(20);
  expect_error([&] { dropout(x, 1.0, gen); }, {"dropout", "[0, 1)", "got 1", "[4, 3]"});
  expect_error([&] { dropout(x, -0.1, gen); }, {"dropout", "got -0.1", "[4, 3]"});
  expect_error([&] { dropout(x, 1.5, gen, false); }, {"dropout", "got 1.5"});
  expect_error(
      [&] {
        dropout(Tensor::randint({4, 3}, 0, 5, 1), 0.5, gen);
      },
      {"dropout", "i64", "[4, 3]"});
}
