// Elementwise ops: cpu against ref (contiguous, strided, broadcast; f32 and f64), f64 gradient
// checks, and the error messages for bad input.
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

}  // namespace

TEST(Elementwise, UnaryCpuMatchesRef) {
  for (const auto& c : unary_cases())
    for (DType dt : {DType::f32, DType::f64})
      for (const Shape& s : kShapes)
        for (bool strided : {false, true}) {
          Tensor x = random_uniform(s, dt, 11, c.lo, c.hi);
          if (strided) x = random_strided(s, dt, 11).mul(0).add(0) , x = x;  // replaced below
          if (strided) {
            Tensor base = random_uniform({s.back() + 1, numel(s) / s.back()}, dt, 12, c.lo, c.hi);
            x = base.slice(0, 0, s.back()).transpose(0, 1).reshape(s);
          }
          expect_backends_agree_with_grad([&](const std::vector<Tensor>& in) { return c.fn(in[0]); },
                                          {x}, std::string(c.name) + " " + dtype_name(dt));
        }
}
