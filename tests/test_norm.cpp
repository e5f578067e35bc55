// LayerNorm and RMSNorm: cpu against ref (f32 and f64, shapes, strided inputs, every choice of
// weight and bias), agreement with the composite formulas, f64 gradient checks, partial
// gradients, a large offset, bitwise determinism across thread counts, and the errors.
#include <omp.h>

#include "rill/ops/elementwise.h"
#include "rill/ops/norm.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

// [600, 64] is large enough for the cpu kernels to go parallel and to use several row blocks.
const std::vector<Shape> kShapes = {{6}, {3, 5}, {2, 3, 37}, {130, 257}, {600, 64}};

struct Params {
  bool weight, bias;
};
const Params kLayerParams[] = {{false, false}, {true, false}, {false, true}, {true, true}};
const Params kRmsParams[] = {{false, false}, {true, false}};

// The norm as a function of its inputs: x, then weight and bias where present.
std::function<Tensor(const std::vector<Tensor>&)> norm_fn(bool rms, Params p) {
  return [rms, p](const std::vector<Tensor>& in) {
    size_t k = 1;
    Tensor w = p.weight ? in[k++] : Tensor();
    Tensor b = p.bias ? in[k++] : Tensor();
    return rms ? rms_norm(in[0], w) : layer_norm(in[0], w, b);
  };
}

std::vector<Tensor> norm_inputs(const Shape& s, DType dt, Params p, bool strided, uint64_t seed) {
  auto make = [&](const Shape& shape, uint64_t k) {
    return strided ? random_strided(shape, dt, seed + k) : random(shape, dt, seed + k);
  };
  std::vector<Tensor> in = {make(s, 0)};
  if (p.weight) in.push_back(make({s.back()}, 1));
  if (p.bias) in.push_back(make({s.back()}, 2));
  return in;
}

std::string describe(const char* name, DType dt, const Shape& s, Params p, bool strided) {
  return fmt::format("{} {} {}{}{}{}", name, dtype_name(dt), shape_str(s),
                     p.weight ? " weight" : "", p.bias ? " bias" : "", strided ? " strided" : "");
}

// fn's output and the gradients of sum(output * w) (w fixed random) for every input that
// `grad` marks; the others are passed without requires_grad.
std::vector<Tensor> value_and_grads(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                    const std::vector<Tensor>& inputs, std::vector<bool> grad) {
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    leaves.push_back(inputs[i].detach());
    if (grad[i]) leaves.back().set_requires_grad(true);
  }
  Tensor y = fn(leaves);
  sum(mul(y, random(y.shape(), y.dtype(), 99))).backward();
  std::vector<Tensor> out = {y.detach()};
  for (const Tensor& l : leaves) out.push_back(l.grad());
  return out;
}

}  // namespace

TEST(LayerNorm, CpuMatchesRef) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Shape& s : kShapes)
      for (Params p : kLayerParams)
        for (bool strided : {false, true})
          expect_backends_agree_with_grad(norm_fn(false, p), norm_inputs(s, dt, p, strided, 30),
                                          describe("layer_norm", dt, s, p, strided));
}

TEST(RmsNorm, CpuMatchesRef) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Shape& s : kShapes)
      for (Params p : kRmsParams)
        for (bool strided : {false, true})
          expect_backends_agree_with_grad(norm_fn(true, p), norm_inputs(s, dt, p, strided, 40),
                                          describe("rms_norm", dt, s, p, strided));
}

TEST(LayerNorm, MatchesCompositeFormula) {
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    for (const Shape& s : kShapes) {
      Tensor x = random(s, DType::f64, 50);
      Tensor w = random({s.back()}, DType::f64, 51), bias = random({s.back()}, DType::f64, 52);
      Tensor centered = sub(x, mean(x, {-1}, true));
      Tensor xhat = mul(centered, rsqrt(add(mean(mul(centered, centered), {-1}, true), 1e-5)));
      EXPECT_TRUE(all_close(layer_norm(x, w, bias), add(mul(xhat, w), bias)))
          << backend_name(b) << " " << shape_str(s);
      EXPECT_TRUE(all_close(layer_norm(x, Tensor(), Tensor(), 1e-5), xhat))
          << backend_name(b) << " " << shape_str(s);
    }
  }
}

TEST(RmsNorm, MatchesCompositeFormula) {
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    for (const Shape& s : kShapes) {
      Tensor x = random(s, DType::f64, 60), w = random({s.back()}, DType::f64, 61);
      Tensor xhat = mul(x, rsqrt(add(mean(mul(x, x), {-1}, true), 1e-6)));
      EXPECT_TRUE(all_close(rms_norm(x, w), mul(xhat, w))) << backend_name(b) << shape_str(s);
      EXPECT_TRUE(all_close(rms_norm(x, Tensor()), xhat)) << backend_name(b) << shape_str(s);
    }
  }
}

TEST(LayerNorm, Gradcheck) {
  for (const Shape& s : std::vector<Shape>{{4, 5}, {2, 3, 6}, {7}})
    for (Params p : kLayerParams)
      gradcheck(norm_fn(false, p), norm_inputs(s, DType::f64, p, false, 70),
                describe("layer_norm", DType::f64, s, p, false));
}

TEST(RmsNorm, Gradcheck) {
  for (const Shape& s : std::vector<Shape>{{4, 5}, {2, 3, 6}, {7}})
    for (Params p : kRmsParams)
      gradcheck(norm_fn(true, p), norm_inputs(s, DType::f64, p, false, 80),
                describe("rms_norm", DType::f64, s, p, false));
}

// When only some inputs require grad, the others get none and the rest match the full run.
TEST(LayerNorm, PartialGradients) {
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    std::vector<Tensor> in = norm_inputs({40, 24}, DType::f64, {true, true}, false, 90);
    auto fn = norm_fn(false, {true, true});
    std::vector<Tensor> full = value_and_grads(fn, in, {true, true, true});
    std::vector<Tensor> params = value_and_grads(fn, in, {false, true, true});
    std::vector<Tensor> only_x = value_and_grads(fn, in, {true, false, false});
    EXPECT_FALSE(params[1].defined());
    EXPECT_TRUE(all_close(params[2], full[2])) << backend_name(b);
    EXPECT_TRUE(all_close(params[3], full[3])) << backend_name(b);
    EXPECT_TRUE(all_close(only_x[1], full[1])) << backend_name(b);
    EXPECT_FALSE(only_x[2].defined() || only_x[3].defined());

    auto rms = norm_fn(true, {true, false});
    std::vector<Tensor> rin = {in[0], in[1]};
    std::vector<Tensor> rfull = value_and_grads(rms, rin, {true, true});
    EXPECT_TRUE(all_close(value_and_grads(rms, rin, {false, true})[2], rfull[2]));
    EXPECT_TRUE(all_close(value_and_grads(rms, rin, {true, false})[1], rfull[1]));
  }
}

// Two-pass statistics: a large common offset changes nothing but the rounding of x itself.
TEST(LayerNorm, LargeOffset) {
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    Tensor x = random({16, 32}, DType::f64, 100);
    EXPECT_TRUE(all_close(layer_norm(add(x, 1000.0), Tensor(), Tensor()),
                          layer_norm(x, Tensor(), Tensor())))
        << backend_name(b);
  }
}

TEST(Norm, ThreadCountInvariant) {
  for (bool rms : {false, true}) {
    Params p = {true, !rms};
    std::vector<Tensor> in = norm_inputs({1000, 96}, DType::f32, p, false, 110);
    expect_thread_invariant(
        [&] { return value_and_grads(norm_fn(rms, p), in, std::vector<bool>(in.size(), true)); },
        rms ? "rms_norm" : "layer_norm");
  }
}

TEST(Norm, BadInput) {
  Tensor x = random({4, 3}, DType::f32, 120);
  Tensor w = random({3}, DType::f32, 121);
  expect_error(
      [&] {
        layer_norm(Tensor::randint({4, 3}, 0, 5, 1), w, w);
      },
      {"[layer_norm]", "[4, 3]", "i64"});
  expect_error([&] { layer_norm(x, random({4}, DType::f32, 1), w); },
               {"[layer_norm]", "weight [4]", "[4, 3]"});
  expect_error(
      [&] {
        layer_norm(x, w, random({3, 1}, DType::f32, 1));
      },
      {"[layer_norm]", "bias [3, 1]", "[4, 3]"});
  expect_error([&] { layer_norm(x, random({3}, DType::f64, 1), Tensor()); },
               {"[layer_norm]", "weight is f64 [3]", "f32 [4, 3]"});
  expect_error([&] { layer_norm(x, w, w, -1.0); }, {"[layer_norm]", "eps", "[4, 3]"});
  expect_error(
      [&] {
        layer_norm(random({4, 0}, DType::f32, 1), Tensor(), Tensor());
      },
      {"[layer_norm]", "[4, 0]"});
  expect_error(
      [&] {
        rms_norm(Tensor::randint({4, 3}, 0, 5, 1), w);
      },
      {"[rms_norm]", "[4, 3]", "i64"});
  expect_error([&] { rms_norm(x, random({2}, DType::f32, 1)); },
               {"[rms_norm]", "weight [2]", "[4, 3]"});
  expect_error([&] { rms_norm(Tensor::scalar(1.0), Tensor()); }, {"[rms_norm]", "[]"});
}

// Zero rows (also from a zero inner dim): empty outputs and all-zero parameter gradients, never
// a NaN left unwritten.
TEST(Norm, EmptyBatch) {
  for (Backend b : {Backend::ref, Backend::cpu})
    for (const Shape& s : std::vector<Shape>{{0, 6}, {2, 0, 6}})
      for (bool rms : {false, true}) {
        BackendGuard g(b);
        Params p = {true, !rms};
        std::vector<Tensor> in = norm_inputs(s, DType::f64, p, false, 130);
        std::vector<Tensor> out =
            value_and_grads(norm_fn(rms, p), in, std::vector<bool>(in.size(), true));
        EXPECT_EQ(out[1].shape(), s);
        for (size_t k = 2; k < out.size(); ++k)
          EXPECT_TRUE(bitwise_equal(out[k], Tensor::zeros({6}, DType::f64)))
              << backend_name(b) << " " << shape_str(s);
      }
}
