// Reductions: cpu against ref over dim sets, keepdim, strided inputs; gradient checks;
// determinism across thread counts; errors.
#include <omp.h>

#include <cmath>

#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

using ReduceFn = std::function<Tensor(const Tensor&, const std::vector<int64_t>&, bool)>;
const std::vector<std::pair<const char*, ReduceFn>> kReductions = {
    {"sum", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return sum(x, d, k); }},
    {"mean", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return mean(x, d, k); }},
    {"max", [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return max(x, d, k); }},
    {"logsumexp",
     [](const Tensor& x, const std::vector<int64_t>& d, bool k) { return logsumexp(x, d, k); }},
};

struct Case {
  Shape shape;
  std::vector<int64_t> dims;
};
const std::vector<Case> kCases = {{{7}, {}},
                                  {{3, 5}, {1}},
                                  {{3, 5}, {0}},
                                  {{2, 3, 4}, {0, 2}},
                                  {{2, 3, 4}, {-1}},
                                  {{2, 3, 4}, {}},
                                  {{5, 9000}, {1}},
                                  {{9000, 3}, {0}},
                                  {{4, 2, 6, 3}, {1, 3}},
                                  // Leading dims summed with many columns kept (a bias gradient):
                                  // the column-chunk path, with a ragged last chunk of columns.
                                  {{37, 3, 300}, {0, 1}},
                                  {{2049, 64}, {0}}};

}  // namespace

TEST(Reduce, CpuMatchesRef) {
  for (const auto& [name, fn] : kReductions)
    for (DType dt : {DType::f32, DType::f64})
      for (const Case& c : kCases)
        for (bool keepdim : {false, true})
          for (bool strided : {false, true}) {
            Tensor x = strided ? random_strided(c.shape, dt, 3) : random(c.shape, dt, 3);
            expect_backends_agree_with_grad(
                [&](const std::vector<Tensor>& in) { return fn(in[0], c.dims, keepdim); }, {x},
                fmt::format("{} {} {} dims {} keepdim {}{}", name, dtype_name(dt),
                            shape_str(c.shape), shape_str(c.dims), keepdim,
                            strided ? " strided" : ""));
          }
}

TEST(Reduce, Gradcheck) {
  for (const auto& [name, fn] : kReductions) {
    Tensor x = random({3, 4, 2}, DType::f64, 4);
    gradcheck([&](const std::vector<Tensor>& in) { return fn(in[0], {0, 2}, false); }, {x}, name);
    gradcheck([&](const std::vector<Tensor>& in) { return fn(in[0], {}, true); }, {x}, name);
  }
}

TEST(Reduce, KnownValuesAndShapes) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(x, {1}).to_vector<double>(), (std::vector<double>{6, 15}));
  EXPECT_EQ(sum(x, {0}, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(mean(x).item<double>(), 3.5);
  EXPECT_EQ(max(x, {0}).to_vector<double>(), (std::vector<double>{4, 5, 6}));
  EXPECT_NEAR(logsumexp(x, {1}).to_vector<double>()[0],
              std::log(std::exp(1) + std::exp(2) + std::exp(3)), 1e-14);
  // Stable for large inputs, and -inf rows stay -inf instead of NaN.
  Tensor big = Tensor::from_vector<float>({1000.f, 1000.f, -INFINITY, -INFINITY}, {2, 2});
  auto l = logsumexp(big, {1}).to_vector<float>();
  EXPECT_NEAR(l[0], 1000.f + std::log(2.f), 1e-3);
  EXPECT_TRUE(std::isinf(l[1]) && l[1] < 0);
}

TEST(Reduce, MaxGradientIsSharedBetweenTies) {
  Tensor x = Tensor::from_vector<double>({1, 3, 3, 2}, {4}).set_requires_grad(true);
  max(x).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0.5, 0.5, 0}));
}

TEST(Reduce, BitwiseIdenticalAcrossThreadCounts) {
  Tensor x = random({3, 100003}, DType::f32, 5), rows = random({4096, 1000}, DType::f32, 6);
  expect_thread_invariant(
      [&] {
        return std::vector<Tensor>{sum(x, {1}), logsumexp(x), sum(rows, {0})};
      },
      "sum, logsumexp, column sums");
}

TEST(Reduce, BadInput) {
  Tensor x = random({4, 3}, DType::f32, 6);
  expect_error([&] { sum(x, {2}); }, {"[sum]", "dim 2", "rank 2"});
  expect_error([&] { sum(x, {1, -1}); }, {"[sum]", "repeated", "[4, 3]"});
  expect_error([&] { max(Tensor::zeros({0, 3}), {0}); }, {"[max]", "[0, 3]"});
  expect_error([&] { mean(Tensor::zeros({3}, DType::i64)); }, {"[mean]", "i64"});
}
