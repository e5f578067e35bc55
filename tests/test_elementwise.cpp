// Elementwise ops: cpu against ref (contiguous, strided, broadcast; f32 and f64), f64 gradient
// checks, and the error messages for bad input.
#include <cmath>

#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  double lo, hi;  // input domain
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, -3, 3},
      {"exp", [](const Tensor& x) { return exp(x); }, -3, 3},
      {"log", [](const Tensor& x) { return log(x); }, 0.1, 4},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.1, 4},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.1, 4},
      {"abs", [](const Tensor& x) { return abs(x); }, -3, 3},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -6, 6},
      {"relu", [](const Tensor& x) { return relu(x); }, -3, 3},
      {"gelu_erf", [](const Tensor& x) { return gelu(x); }, -4, 4},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, GeluApprox::tanh); }, -4, 4},
      {"silu", [](const Tensor& x) { return silu(x); }, -4, 4},
      {"elu", [](const Tensor& x) { return elu(x, 0.7); }, -3, 3},
      {"softplus", [](const Tensor& x) { return softplus(x, 2.0, 5.0); }, -4, 4},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.8); }, -2, 2},
      {"pow", [](const Tensor& x) { return pow(x, 2.5); }, 0.2, 3},
      {"add_scalar", [](const Tensor& x) { return x + 1.5; }, -3, 3},
      {"mul_scalar", [](const Tensor& x) { return x * -2.5; }, -3, 3},
  };
}

const std::vector<Shape> kShapes = {{7}, {3, 5}, {2, 3, 37}, {130, 257}};

using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;
const std::vector<std::pair<const char*, BinaryFn>> kBinary = {
    {"add", [](const Tensor& a, const Tensor& b) { return a + b; }},
    {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }},
    {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }},
    {"div", [](const Tensor& a, const Tensor& b) { return a / b; }},
};

// Pairs of broadcast-compatible shapes.
const std::vector<std::pair<Shape, Shape>> kBroadcast = {
    {{5}, {5}},          {{3, 4}, {3, 4}}, {{3, 4}, {4}},          {{3, 1}, {1, 4}},
    {{2, 1, 5}, {3, 1}}, {{}, {2, 3}},     {{64, 300}, {64, 300}}, {{64, 300}, {300}}};

}  // namespace

TEST(Elementwise, UnaryCpuMatchesRef) {
  for (const auto& c : unary_cases())
    for (DType dt : {DType::f32, DType::f64})
      for (const Shape& s : kShapes)
        for (bool strided : {false, true}) {
          Tensor x = strided ? random_uniform_strided(s, dt, 11, c.lo, c.hi)
                             : random_uniform(s, dt, 11, c.lo, c.hi);
          ASSERT_EQ(x.is_contiguous(), !strided);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return c.fn(in[0]); }, {x},
              fmt::format("{} {} {}{}", c.name, dtype_name(dt), shape_str(s),
                          strided ? " strided" : ""));
        }
}

TEST(Elementwise, UnaryGradcheck) {
  for (const auto& c : unary_cases()) {
    Tensor x = random_uniform({3, 4}, DType::f64, 5, c.lo, c.hi);
    gradcheck([&](const std::vector<Tensor>& in) { return c.fn(in[0]); }, {x}, c.name);
  }
}

TEST(Elementwise, BinaryCpuMatchesRef) {
  for (const auto& [name, fn] : kBinary)
    for (DType dt : {DType::f32, DType::f64})
      for (const auto& [sa, sb] : kBroadcast)
        for (bool strided : {false, true}) {
          Tensor a = strided ? random_uniform_strided(sa, dt, 1, 0.5, 2)
                             : random_uniform(sa, dt, 1, 0.5, 2);
          Tensor b = strided ? random_uniform_strided(sb, dt, 2, 0.5, 2)
                             : random_uniform(sb, dt, 2, 0.5, 2);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return fn(in[0], in[1]); }, {a, b},
              fmt::format("{} {} {} {}", name, dtype_name(dt), shape_str(sa), shape_str(sb)));
        }
}

TEST(Elementwise, BinaryGradcheckWithBroadcast) {
  for (const auto& [name, fn] : kBinary) {
    Tensor a = random_uniform({2, 1, 3}, DType::f64, 3, 0.5, 2);
    Tensor b = random_uniform({4, 1}, DType::f64, 4, 0.5, 2);
    gradcheck([&](const std::vector<Tensor>& in) { return fn(in[0], in[1]); }, {a, b}, name);
  }
}

TEST(Elementwise, WhereAndMaskedFill) {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor cond = gt(random({3, 1, 5}, dt, 9), Tensor::scalar(0.0, dt));
    Tensor a = random({4, 5}, dt, 10), b = random_strided({3, 4, 5}, dt, 11);
    expect_backends_agree_with_grad(
        [&](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); }, {a, b},
        fmt::format("where {}", dtype_name(dt)));
    Tensor mask = Tensor::randint({4, 5}, 0, 2, 3, DType::i32);
    expect_backends_agree_with_grad(
        [&](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, -7.0); }, {a},
        fmt::format("masked_fill {}", dtype_name(dt)));
  }
  Tensor cond = Tensor::from_vector<int64_t>({1, 0, 2}, {3});
  Tensor a = Tensor::from_vector<double>({1, 2, 3}, {3}),
         b = Tensor::from_vector<double>({4, 5, 6}, {3});
  EXPECT_EQ(where(cond, a, b).to_vector<double>(), (std::vector<double>{1, 5, 3}));
  gradcheck([&](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); },
            {random({2, 3}, DType::f64, 1), random({3}, DType::f64, 2)}, "where");
}

TEST(Elementwise, KnownValues) {
  Tensor x = Tensor::from_vector<double>({-2, -0.5, 0.5, 2}, {4});
  auto v = gelu(x).to_vector<double>();
  EXPECT_NEAR(v[3], 2 * 0.5 * (1 + std::erf(2 / std::sqrt(2.0))), 1e-15);
  auto s = softplus(Tensor::from_vector<double>({30.0, -30.0}, {2})).to_vector<double>();
  EXPECT_EQ(s[0], 30.0);  // above the threshold softplus is the identity
  EXPECT_NEAR(s[1], std::log1p(std::exp(-30.0)), 1e-25);
  auto sg = sigmoid(Tensor::from_vector<float>({-100.f, 100.f}, {2})).to_vector<float>();
  EXPECT_TRUE(sg[0] >= 0.f && sg[0] < 1e-40f);  // no overflow on the negative side
  EXPECT_EQ(sg[1], 1.f);
  EXPECT_EQ((Tensor::from_vector<int64_t>({3, 4}, {2}) + Tensor::from_vector<int64_t>({1, 1}, {2}))
                .to_vector<int64_t>(),
            (std::vector<int64_t>{4, 5}));
}

TEST(Elementwise, BadInput) {
  Tensor a = random({4, 3}, DType::f32, 1), b = random({4, 2}, DType::f32, 2);
  expect_error([&] { add(a, b); }, {"[add]", "[4, 3]", "[4, 2]"});
  expect_error([&] { mul(a, random({4, 3}, DType::f64, 3)); }, {"[mul]", "f32", "f64"});
  expect_error([&] { exp(Tensor::zeros({2}, DType::i64)); }, {"[exp]", "i64"});
  expect_error([&] { div(Tensor::ones({2}, DType::i32), Tensor::ones({2}, DType::i32)); },
               {"[div]", "integer"});
  expect_error([&] { clamp(a, 1.0, -1.0); }, {"[clamp]"});
  expect_error([&] { masked_fill(a, Tensor::ones({5}, DType::i32), 0); },
               {"[masked_fill]", "[5]", "[4, 3]"});
}
