// The causal depthwise convolution op (local context for the mixers): cpu against ref and against
// the definition written out here, with and without carried inputs, f32 and f64, widths 1 to 5,
// non-contiguous inputs; f64 gradient checks of x, w and prev through both backends; pieces with
// the carried inputs equal the whole; thread-count invariance; errors.
#include "rill/ops/causal_conv.h"
#include "rill/ops/index.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

// y[b,t,d] = sum_j w[j,d] xp[b,t-j,d], xp the input after the carried rows, in double.
std::vector<double> by_definition(const Tensor& x, const Tensor& w, const Tensor& prev) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), W = w.size(0);
  const std::vector<double> xv = x.contiguous().to_vector<double>();
  const std::vector<double> wv = w.contiguous().to_vector<double>();
  const std::vector<double> pv =
      prev.defined() ? prev.contiguous().to_vector<double>() : std::vector<double>();
  std::vector<double> y(size_t(B * T * D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < W; ++j) {
          const int64_t s = t - j;
          const double v = s >= 0       ? xv[(b * T + s) * D + d]
                           : pv.empty() ? 0.0
                                        : pv[(b * (W - 1) + (W - 1 + s)) * D + d];
          acc += wv[j * D + d] * v;
        }
        y[(b * T + t) * D + d] = acc;
      }
  return y;
}

}  // namespace

TEST(CausalConv, MatchesTheDefinitionOnBothBackends) {
  for (DType dt : {DType::f32, DType::f64})
    for (int64_t width : {1, 2, 3, 5})
      for (bool with_prev : {false, true})
        for (bool strided : {false, true}) {
          const Shape xs = {3, 37, 70};  // rows split unevenly over the kernel's blocks
          Tensor x = strided ? random_strided(xs, dt, 1) : random(xs, dt, 1);
          Tensor w = random({width, 70}, dt, 2);
          Tensor prev = with_prev && width > 1 ? random({3, width - 1, 70}, dt, 3) : Tensor();
          const std::string what =
              fmt::format("{} W {} prev {} strided {}", dtype_name(dt), width, with_prev, strided);
          Tensor y = causal_conv1d(x, w, prev);
          EXPECT_TRUE(all_close(y, Tensor::from_vector(by_definition(x, w, prev), xs).to(dt)))
              << what;
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) {
                return causal_conv1d(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
              },
              prev.defined() ? std::vector<Tensor>{x, w, prev} : std::vector<Tensor>{x, w}, what);
        }
}

TEST(CausalConv, Gradcheck) {
  Tensor x = random({2, 6, 5}, DType::f64, 4), w = random({3, 5}, DType::f64, 5);
  Tensor prev = random({2, 2, 5}, DType::f64, 6);
  gradcheck([](const std::vector<Tensor>& in) { return causal_conv1d(in[0], in[1], in[2]); },
            {x, w, prev}, "causal_conv1d with carried inputs");
  gradcheck([](const std::vector<Tensor>& in) { return causal_conv1d(in[0], in[1], Tensor()); },
            {x, w}, "causal_conv1d from zeros");
}

// A sequence in two pieces, the second given the first's last W-1 inputs, equals the whole.
TEST(CausalConv, PiecesWithCarriedInputsEqualTheWhole) {
  Tensor x = random({2, 20, 16}, DType::f64, 7), w = random({4, 16}, DType::f64, 8);
  Tensor whole = causal_conv1d(x, w, Tensor());
  Tensor first = causal_conv1d(x.narrow(1, 0, 9), w, Tensor());
  Tensor second = causal_conv1d(x.narrow(1, 9, 11), w, x.narrow(1, 6, 3));
  EXPECT_TRUE(all_close(concat({first, second}, 1), whole));
}

TEST(CausalConv, ThreadCountInvariant) {
  Tensor x = random({4, 300, 64}, DType::f32, 9), w = random({4, 64}, DType::f32, 10);
  Tensor prev = random({4, 3, 64}, DType::f32, 11);
  expect_thread_invariant(
      [&] {
        Tensor xl = x.detach().set_requires_grad(true), wl = w.detach().set_requires_grad(true);
        Tensor pl = prev.detach().set_requires_grad(true);
        Tensor y = causal_conv1d(xl, wl, pl);
        y.backward(random(y.shape(), DType::f32, 12));
        return std::vector<Tensor>{y, xl.grad(), wl.grad(), pl.grad()};
      },
      "causal_conv1d forward and backward");
}

TEST(CausalConv, BadInput) {
  Tensor x = random({2, 5, 4}, DType::f32, 1);
  expect_error(
      [&] {
        causal_conv1d(x, random({3, 5}, DType::f32, 2), Tensor());
      },
      {"[causal_conv1d]", "[2, 5, 4]", "[3, 5]"});
  expect_error(
      [&] {
        causal_conv1d(x, random({3, 4}, DType::f32, 2), random({2, 1, 4}, DType::f32, 3));
      },
      {"[causal_conv1d]", "prev", "[2, 2, 4]", "[2, 1, 4]"});
  expect_error(
      [&] {
        causal_conv1d(x, random({3, 4}, DType::f64, 2), Tensor());
      },
      {"[causal_conv1d]", "f64"});
}
