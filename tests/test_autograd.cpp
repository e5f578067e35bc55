// Autograd semantics: reuse, accumulation, detach, no-grad mode, errors; and that the test
// oracle itself (gradcheck, all_close) can fail.
#include <gtest/gtest-spi.h>

#include "rill/autograd/grad_mode.h"
#include "rill/autograd/node.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

TEST(Autograd, TensorUsedTwiceSumsBothPaths) {
  Tensor x = random({3, 4}, DType::f64, 1).set_requires_grad(true);
  Tensor y = sum(mul(x, x) + exp(x));  // d/dx = 2x + exp(x)
  y.backward();
  EXPECT_TRUE(all_close(x.grad(), add(mul(x.detach(), 2.0), exp(x.detach()))));
}

TEST(Autograd, DiamondGraph) {
  Tensor x = random({5}, DType::f64, 2).set_requires_grad(true);
  Tensor a = tanh(x);
  Tensor b = mul(a, 3.0), c = sigmoid(a);
  sum(b * c).backward();
  Tensor ad = tanh(x.detach()), s = sigmoid(ad);
  Tensor expect = mul(add(mul(s, 3.0), mul(mul(ad, 3.0), mul(s, add(neg(s), 1.0)))),
                      add(neg(mul(ad, ad)), 1.0));
  EXPECT_TRUE(all_close(x.grad(), expect));
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = random({2, 3}, DType::f64, 3).set_requires_grad(true);
  sum(mul(x, 2.0)).backward();
  Tensor first = x.grad().clone();
  sum(mul(x, 2.0)).backward();
  EXPECT_TRUE(all_close(x.grad(), mul(first, 2.0)));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, DetachStopsGradient) {
  Tensor x = random({4}, DType::f64, 4).set_requires_grad(true);
  Tensor d = exp(x).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.grad_fn(), nullptr);
  sum(mul(x, d)).backward();  // d is a constant: grad is d itself
  EXPECT_TRUE(all_close(x.grad(), d));
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = random({4}, DType::f32, 5).set_requires_grad(true);
  Tensor y;
  {
    NoGradGuard g;
    y = sum(exp(x) * x);
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  expect_error([&] { y.backward(); }, {"[backward]", "does not require grad"});
  EXPECT_TRUE(GradMode::is_enabled());  // the guard restored the mode
}

TEST(Autograd, Errors) {
  Tensor x = random({2, 2}, DType::f64, 6).set_requires_grad(true);
  Tensor y = exp(x);
  expect_error([&] { y.backward(); }, {"[backward]", "[2, 2]"});  // non-scalar without gradient
  expect_error([&] { y.backward(Tensor::ones({3}, DType::f64)); }, {"[backward]", "[3]"});
  expect_error([&] { y.set_requires_grad(false); }, {"[set_requires_grad]"});
  y.backward(Tensor::ones({2, 2}, DType::f64));
  EXPECT_TRUE(all_close(x.grad(), y.detach()));
}

TEST(Autograd, ViewsAreDifferentiable) {
  Tensor x = random({2, 3, 4}, DType::f64, 7);
  gradcheck([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).slice(1, 1, 3); }, {x},
            "transpose+slice");
  gradcheck([](const std::vector<Tensor>& in) { return in[0].slice(2, 0, 4, 2).reshape({-1}); },
            {x}, "strided slice+reshape");
  gradcheck([](const std::vector<Tensor>& in) { return in[0].select(1, -1).unsqueeze(0); }, {x},
            "select+unsqueeze");
  gradcheck(
      [](const std::vector<Tensor>& in) {
        return in[0].unsqueeze(1).expand({2, 5, 3, 4});
      },
      {x}, "expand");
  gradcheck(
      [](const std::vector<Tensor>& in) {
        return in[0].permute({2, 0, 1}).contiguous();
      },
      {x}, "permute+contiguous");
}

TEST(Autograd, CastGradientComesBackInTheInputDtype) {
  Tensor x = random({3, 2}, DType::f64, 10).set_requires_grad(true);
  Tensor w = random({3, 2}, DType::f32, 11);
  sum(mul(x.to(DType::f32), w)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_TRUE(all_close(x.grad(), w.to(DType::f64)));
}

// A node with a deliberately wrong derivative: gradcheck must notice.
TEST(Autograd, GradcheckDetectsAWrongGradient) {
  struct WrongBackward : Node {
    const char* name() const override { return "wrong"; }
    std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
      return {mul(g[0], 1.01)};  // the true derivative of the identity is 1
    }
  };
  auto wrong_identity = [](const std::vector<Tensor>& in) {
    Tensor y = in[0].detach().clone();
    if (should_record({&in[0]})) record(std::make_shared<WrongBackward>(), {&in[0]}, {&y});
    return y;
  };
  EXPECT_NONFATAL_FAILURE(
      gradcheck(wrong_identity, {random({1}, DType::f64, 8)}, "wrong", kGradcheckTol, Backend::ref),
      "analytic");
}

TEST(Autograd, AllCloseDetectsDifferences) {
  Tensor a = random({10}, DType::f32, 9);
  Tensor b = a.clone();
  b.data<float>()[3] += 1e-3f;
  EXPECT_FALSE(all_close(b, a));
  EXPECT_TRUE(all_close(a.clone(), a));
  Tensor nan = Tensor::full({10}, NAN, DType::f32);
  EXPECT_FALSE(all_close(nan, a));  // an unwritten (NaN) output never passes
}
