// ReLiT: the factorised update in every form of the gated-state op (recurrent and chunked kernels,
// the step) and the projected_sigmoid update against naive f64 recurrences written from relit.md
// 1.2; AReLiT's "distinct" mode tending to the ReLiT mixer itself as r grows (same weights); the
// state bytes of the paper's configurations; saturated gates; bad configs. The contract suite
// (test_mixers) covers causality, pieces, resets and gradients through both backends.
#include <gtest/gtest.h>

#include <cmath>

#include "rill/autograd/grad_mode.h"
#include "rill/mixers/arelit.h"
#include "rill/mixers/registry.h"
#include "rill/mixers/relit.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/reduce.h"
#include "tests/support/gated_reference.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

constexpr int64_t kD = 16;

RelitConfig relit_config(RelitUpdate update, int64_t eta = 2, int64_t heads = 2) {
  RelitConfig c;
  c.d_model = kD, c.heads = heads, c.eta = eta, c.update = update, c.seed = 5;
  c.dtype = DType::f64;
  return c;
}

Tensor forward_by_steps(Mixer& m, const Tensor& x, State& s) {
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < x.size(1); ++t) outs.push_back(m.step(x.select(1, t), s).unsqueeze(1));
  return concat(outs, 1);
}

// projected_sigmoid in f64, per head: C_t = (1 - β⊗γ) ⊙ C_{t-1} + (β⊗γ) ⊙ (v⊗φ(k)), s and o as
// in the factorised update; returns o [B,T,H,d].
std::vector<double> naive_projected(const Features& f, double eps) {
  std::vector<double> o(f.b * f.t * f.h * f.d, 0.0);
  for (int64_t b = 0; b < f.b; ++b)
    for (int64_t h = 0; h < f.h; ++h) {
      std::vector<double> C(f.d * f.f, 0.0), s(f.f, 0.0);
      for (int64_t t = 0; t < f.t; ++t) {
        const int64_t row = (b * f.h + h) * f.t + t;
        double den = 0;
        for (int64_t j = 0; j < f.f; ++j) {
          s[j] =
              (1 - f.gamma[row * f.f + j]) * s[j] + f.gamma[row * f.f + j] * f.phi_k[row * f.f + j];
          den += s[j] * f.phi_q[row * f.f + j];
        }
        for (int64_t i = 0; i < f.d; ++i) {
          double num = 0;
          for (int64_t j = 0; j < f.f; ++j) {
            const double gate = f.beta[row * f.d + i] * f.gamma[row * f.f + j];
            double& c = C[i * f.f + j];
            c = (1 - gate) * c + gate * f.v[row * f.d + i] * f.phi_k[row * f.f + j];
            num += c * f.phi_q[row * f.f + j];
          }
          o[((b * f.t + t) * f.h + h) * f.d + i] = num / (den + eps);
        }
      }
    }
  return o;
}

double rel_error(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  return std::sqrt(sum(mul(sub(a, b), sub(a, b))).item<double>() / sum(mul(b, b)).item<double>());
}

}  // namespace

// Both updates, every form: the whole sequence (recurrent kernel, chunked kernel with chunks that
// do and do not divide T), in pieces and step by step, against the naive recurrence.
TEST(Relit, EveryFormMatchesTheRecurrence) {
  for (RelitUpdate update : {RelitUpdate::factorised, RelitUpdate::projected_sigmoid})
    for (int64_t eta : {1, 3}) {
      std::vector<std::pair<LinearAttentionForm, int64_t>> forms = {
          {LinearAttentionForm::recurrent, 64},
          {LinearAttentionForm::chunked, 5},
          {LinearAttentionForm::chunked, 64}};
      if (update == RelitUpdate::projected_sigmoid) forms.resize(1);  // one form: the scan
      for (auto [form, chunk] : forms) {
        RelitConfig c = relit_config(update, eta);
        c.form = form, c.chunk = chunk;
        RelitMixer m(c);
        Tensor x = random({2, 23, kD}, DType::f64, 7);
        const Features f = features_of(m.features(), x);
        const Tensor want = project(
            m.features(),
            update == RelitUpdate::factorised ? naive_relit(f, c.eps) : naive_projected(f, c.eps),
            f);
        const std::string what = fmt::format("{} eta {} chunk {}", int(update), eta, chunk);
        EXPECT_TRUE(all_close(m.forward(x, nullptr), want)) << what;
        State s = m.init_state(2);
        Tensor a = m.forward(x.narrow(1, 0, 11), &s), b = m.forward(x.narrow(1, 11, 12), &s);
        EXPECT_TRUE(all_close(concat({a, b}, 1), want)) << what << " pieces";
        State st = m.init_state(2);
        EXPECT_TRUE(all_close(forward_by_steps(m, x, st), want)) << what << " steps";
      }
    }
}

// AReLiT approximates ReLiT's factorised update: with the same weights (both build their gated
// features from the same seed), the distinct mode's output tends to the ReLiT mixer's as r grows.
TEST(Relit, ArelitDistinctApproachesTheRelitMixer) {
  RelitMixer relit(relit_config(RelitUpdate::factorised, 2));
  Tensor x = random({2, 40, kD}, DType::f64, 9);
  const Tensor want = relit.forward(x, nullptr);
  double previous = 1e30;
  std::printf("AReLiT (distinct) against the ReLiT mixer, relative error by r:\n");
  for (int64_t r : {1, 2, 4, 8, 16, 32}) {
    ArelitConfig c;
    c.d_model = kD, c.heads = 2, c.eta = 2, c.r = r, c.seed = 5, c.dtype = DType::f64;
    ArelitMixer arelit(c);
    const double err = rel_error(arelit.forward(x, nullptr), want);
    std::printf("  r %2lld: %.4f\n", static_cast<long long>(r), err);
    EXPECT_LT(err, previous) << "r " << r;
    previous = err;
  }
  EXPECT_LT(previous, 0.25);
}

// relit.md 1.5: GaLiTe's state is H·(η·d² + η·d) floats per layer; for the paper's 4-layer
// d_model 128 model (H 4, d 64) that is 133,120 floats at η = 2 (the T-Maze config) and 266,240
// at η = 4. Both updates hold the same number.
TEST(Relit, StateBytesMatchThePaper) {
  for (auto [eta, floats] : {std::pair<int64_t, int64_t>{2, 133120}, {4, 266240}})
    for (RelitUpdate update : {RelitUpdate::factorised, RelitUpdate::projected_sigmoid}) {
      RelitConfig c;
      c.d_model = 128, c.heads = 4, c.head_dim = 64, c.eta = eta, c.update = update;
      RelitMixer m(c);
      EXPECT_EQ(4 * m.state_bytes(1000), size_t(floats) * 4) << "eta " << eta;
      State s = m.init_state(1);
      {
        NoGradGuard no_grad;
        m.forward(random({1, 7, 128}, DType::f32, 3), &s);
      }
      EXPECT_EQ(4 * s.bytes(), size_t(floats) * 4) << "eta " << eta << " after a forward";
    }
}

// A saturated gate (σ = 1 in f32 for pre-activations past ~17; here every bias is set to 40)
// floors the decay at 1e-6 before its log: outputs and gradients stay finite.
TEST(Relit, SaturatedGatesStayFinite) {
  for (RelitUpdate update : {RelitUpdate::factorised, RelitUpdate::projected_sigmoid}) {
    RelitConfig c = relit_config(update);
    c.dtype = DType::f32;
    RelitMixer m(c);
    for (const auto& p : m.named_parameters())
      if (p.name.find("bias") != std::string::npos) Tensor(p.tensor).fill_(40.0);
    Tensor x = random({1, 9, kD}, DType::f32, 4).set_requires_grad(true);
    Tensor y = m.forward(x, nullptr);
    sum(y).backward();
    {  // the inputs do saturate some gate: 1 - γ rounds to 0 somewhere
      NoGradGuard no_grad;
      const GatedFeatureTensors f = m.features().forward(x);
      EXPECT_GT(sum(eq(f.gamma, Tensor::scalar(1.0, DType::f32))).item<double>(), 0);
    }
    EXPECT_TRUE(std::isfinite(sum(abs(y)).item<double>()));
    EXPECT_TRUE(std::isfinite(sum(abs(x.grad())).item<double>()));
  }
}

TEST(Relit, BadConfigIsRefused) {
  auto make = [](const nlohmann::json& j) { make_mixer(j, kD, 1, DType::f32); };
  expect_error([&] { make({{"type", "relit"}, {"update", "delta"}}); }, {"update", "delta"});
  expect_error(
      [&] {
        make({{"type", "relit"}, {"update", "projected_sigmoid"}, {"form", "recurrent"}});
      },
      {"factorised update only"});
  expect_error([&] { make({{"type", "relit"}, {"eta", 0}}); }, {"eta"});
  expect_error([&] { make({{"type", "relit"}, {"chunk", 0}}); }, {"chunk"});
  expect_error([&] { make({{"type", "relit"}, {"form", "parallel"}}); }, {"form"});
  expect_error([&] { make({{"type", "relit"}, {"gates", 2}}); }, {"gates"});
}
