// AReLiT: every form (parallel, pieces, step, resets) against a naive f64 per-step recurrence
// written here from relit.md 1.4; the "reference" mode against numbers worked out by hand from the
// authors' equations; the "distinct" mode tending to the factorised ReLiT recurrence as r grows;
// the paper config's state size; bad configs.
#include <gtest/gtest.h>

#include <cmath>

#include "rill/autograd/grad_mode.h"
#include "rill/mixers/arelit.h"
#include "rill/mixers/registry.h"
#include "rill/ops/index.h"
#include "tests/support/gated_reference.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

constexpr int64_t kD = 16;

ArelitConfig config(int64_t r, ArelitMode mode, int64_t eta = 2) {
  ArelitConfig c;
  c.d_model = kD, c.heads = 2, c.eta = eta, c.r = r, c.mode = mode, c.seed = 5;
  c.dtype = DType::f64;
  return c;
}

// The AReLiT recurrence step by step in f64, straight from relit.md 1.4, from zero states and
// tick tick0: returns the per-head outputs [B,T,H,d] and the final states v [B,H,r,d],
// k [B,H,r,F], s [B,H,F].
struct NaiveArelit {
  std::vector<double> o, v, k, s;
};

NaiveArelit naive_arelit(const Features& f, const std::vector<double>& omega, double c, double eps,
                         int64_t tick0) {
  const int64_t r = static_cast<int64_t>(omega.size());
  NaiveArelit n;
  n.o.assign(f.b * f.t * f.h * f.d, 0.0);
  n.v.assign(f.b * f.h * r * f.d, 0.0);
  n.k.assign(f.b * f.h * r * f.f, 0.0);
  n.s.assign(f.b * f.h * f.f, 0.0);
  for (int64_t b = 0; b < f.b; ++b)
    for (int64_t h = 0; h < f.h; ++h) {
      double* v = &n.v[(b * f.h + h) * r * f.d];
      double* k = &n.k[(b * f.h + h) * r * f.f];
      double* s = &n.s[(b * f.h + h) * f.f];
      for (int64_t t = 0; t < f.t; ++t) {
        const int64_t row = (b * f.h + h) * f.t + t;
        const double* beta = &f.beta[row * f.d];
        const double* vv = &f.v[row * f.d];
        const double* gamma = &f.gamma[row * f.f];
        const double* pk = &f.phi_k[row * f.f];
        const double* pq = &f.phi_q[row * f.f];
        const double tau = double(tick0 + t + 1);
        double den = 0;
        for (int64_t j = 0; j < f.f; ++j) {
          s[j] = (1 - gamma[j]) * s[j] + gamma[j] * pk[j];
          den += s[j] * pq[j];
        }
        std::vector<double> num(f.d, 0.0);
        for (int64_t l = 0; l < r; ++l) {
          const double cs = std::cos(omega[l] * tau);
          double kq = 0;
          for (int64_t j = 0; j < f.f; ++j) {
            double& kl = k[l * f.f + j];
            kl = (1 - gamma[j]) * kl + cs * gamma[j] * pk[j];
            kq += kl * pq[j];
          }
          for (int64_t i = 0; i < f.d; ++i) {
            double& vl = v[l * f.d + i];
            vl = (1 - beta[i]) * vl + cs * beta[i] * vv[i];
            num[i] += vl * kq;
          }
        }
        for (int64_t i = 0; i < f.d; ++i)
          n.o[((b * f.t + t) * f.h + h) * f.d + i] = num[i] / (c * den + eps);
      }
    }
  return n;
}

Tensor forward_by_steps(Mixer& m, const Tensor& x, State& s) {
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < x.size(1); ++t) outs.push_back(m.step(x.select(1, t), s).unsqueeze(1));
  return concat(outs, 1);
}

double rel_error(const Tensor& a, const Tensor& b) {
  const auto u = a.to_vector<double>(), v = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < u.size(); ++i) num += (u[i] - v[i]) * (u[i] - v[i]), den += v[i] * v[i];
  return std::sqrt(num / den);
}

}  // namespace

// The parallel form (whole and in pieces), the step form and the forward with resets, in both
// modes, against the naive recurrence: outputs and final states (v, k, s, tick).
TEST(Arelit, EveryFormMatchesTheNaiveRecurrence) {
  for (ArelitMode mode : {ArelitMode::distinct, ArelitMode::reference})
    for (int64_t r : {1, 2, 5}) {
      ArelitMixer m(config(r, mode));
      const std::string what = fmt::format("mode {} r {}", int(mode), r);
      const int64_t T = 40;
      Tensor x = random({2, T, kD}, DType::f64, 7);
      const Features f = features_of(m.features(), x);
      const NaiveArelit n = naive_arelit(f, m.frequencies(), m.scale(), 1e-5, m.tick0());
      const Tensor want = project(m.features(), n.o, f);
      auto check_state = [&](const State& s, const std::string& form) {
        EXPECT_TRUE(all_close(s.get("v"), Tensor::from_vector(n.v, s.get("v").shape())))
            << what << form;
        EXPECT_TRUE(all_close(s.get("k"), Tensor::from_vector(n.k, s.get("k").shape())))
            << what << form;
        EXPECT_TRUE(all_close(s.get("s"), Tensor::from_vector(n.s, s.get("s").shape())))
            << what << form;
        EXPECT_EQ(s.get("tick").to_vector<int64_t>(), std::vector<int64_t>(2, m.tick0() + T))
            << what << form;
      };
      State whole = m.init_state(2);
      EXPECT_TRUE(all_close(m.forward(x, &whole), want)) << what;
      check_state(whole, " parallel");
      State pieces = m.init_state(2);
      Tensor y1 = m.forward(x.narrow(1, 0, 17), &pieces);
      Tensor y2 = m.forward(x.narrow(1, 17, T - 17), &pieces);
      EXPECT_TRUE(all_close(concat({y1, y2}, 1), want)) << what << " pieces";
      check_state(pieces, " pieces");
      State steps = m.init_state(2);
      EXPECT_TRUE(all_close(forward_by_steps(m, x, steps), want)) << what << " steps";
      check_state(steps, " steps");
      // A reset at t = 25 in stream 1: from there it is the naive recurrence over x[25:] alone.
      Tensor resets = Tensor::zeros({2, T}, DType::f64);
      resets.select(0, 1).select(0, 25).fill_(1.0);
      State rs = m.init_state(2);
      Tensor yr = m.forward_with_resets(x, &rs, resets);
      Tensor tail = x.narrow(1, 25, T - 25).narrow(0, 1, 1).contiguous();
      const Features ft = features_of(m.features(), tail);
      const Tensor want_tail = project(
          m.features(), naive_arelit(ft, m.frequencies(), m.scale(), 1e-5, m.tick0()).o, ft);
      EXPECT_TRUE(all_close(yr.narrow(0, 1, 1).narrow(1, 25, T - 25), want_tail))
          << what << " reset";
      EXPECT_TRUE(all_close(yr.narrow(0, 0, 1), want.narrow(0, 0, 1)))
          << what << " stream without reset";
      EXPECT_EQ(rs.get("tick").to_vector<int64_t>(),
                (std::vector<int64_t>{m.tick0() + T, m.tick0() + T - 25}));
    }
}

// The authors' equations by hand, H = 1, d = 1, η = 1, d_model = 1. Weights: k = q = v = x
// (fused weight rows [1, 1, 1, 0, 0], so β̂ = γ̂ = 0), p1 = p2 = x, p3 = 0 (p weight [1, 1, 0]),
// W_o = 1, zero biases. For x > 0: φ(k) = φ(q) = x², β = σ(0) = 1/2, γ = σ(0)σ(0) = 1/4.
// reference mode: first τ = 2, ε = 1e-5.
//
// r = 2: ω = {-π, π}, both cos(ω τ) = (-1)^τ; c = 4. x = 1, 2, 1:
//   τ=2 (+1): ṽ = 1/2,  k̃ = 1/4,    s = 1/4;   num = 2·(1/2)(1/4)(1) = 1/4;     den = 4·(1/4)   = 1
//   τ=3 (-1): ṽ = 1/4 - 1 = -3/4,  k̃ = 3/16 - 1 = -13/16,  s = 3/16 + 1 = 19/16;
//             num = 2·(-3/4)(-13/16·4) = 39/8;  den = 4·(19/16·4) = 19
//   τ=4 (+1): ṽ = -3/8 + 1/2 = 1/8,  k̃ = -39/64 + 1/4 = -23/64,  s = 57/64 + 1/4 = 73/64;
//             num = 2·(1/8)(-23/64) = -23/256;  den = 4·73/64 = 73/16
// r = 4: ω = {-π, -π/3, π/3, π}, c = 8. x = 1, 2:
//   τ=2: cos = {1, -1/2, -1/2, 1}: ṽ = {1/2, -1/4}, k̃ = {1/4, -1/8} (for ±π, ±π/3), s = 1/4;
//        num = 2(1/2)(1/4) + 2(-1/4)(-1/8) = 5/16;  den = 8·1/4 = 2
//   τ=3: cos = {-1, -1, -1, -1}: ṽ = {1/4 - 1, -1/8 - 1} = {-3/4, -9/8},
//        k̃ = {3/16 - 1, -3/32 - 1} = {-13/16, -35/32}, s = 19/16;
//        num = 2(-3/4)(-13/4) + 2(-9/8)(-35/8) = 39/8 + 315/32 = 471/32;  den = 8·19/4 = 38
//   (Had the first τ been 1, step two would give 195/32: the r = 4 case pins the tick's start,
//   which r = 2 cannot, as a global sign flip of (-1)^τ leaves every product unchanged.)
TEST(Arelit, ReferenceModeMatchesHandComputedValues) {
  struct Case {
    int64_t r;
    std::vector<double> x, want;
  };
  const double e = 1e-5;
  const std::vector<Case> cases = {
      {2, {1, 2, 1}, {0.25 / (1 + e), (39.0 / 8) / (19 + e), (-23.0 / 256) / (73.0 / 16 + e)}},
      {4, {1, 2}, {(5.0 / 16) / (2 + e), (471.0 / 32) / (38 + e)}}};
  for (const Case& c : cases) {
    ArelitConfig cfg;
    cfg.d_model = 1, cfg.heads = 1, cfg.head_dim = 1, cfg.eta = 1, cfg.r = c.r;
    cfg.mode = ArelitMode::reference, cfg.dtype = DType::f64;
    ArelitMixer m(cfg);
    {
      NoGradGuard no_grad;
      for (auto& [name, p] : m.state_dict()) {
        std::vector<double> v(p.numel(), 0.0);
        if (name == "features.kqvbg.weight") v = {1, 1, 1, 0, 0};
        if (name == "features.p.weight") v = {1, 1, 0};
        if (name == "features.o.weight") v = {1};
        Tensor(p).copy_(Tensor::from_vector(v, p.shape()));
      }
    }
    const int64_t T = static_cast<int64_t>(c.x.size());
    Tensor x = Tensor::from_vector(c.x, {1, T, 1});
    const Tensor want = Tensor::from_vector(c.want, {1, T, 1});
    EXPECT_TRUE(all_close(m.forward(x, nullptr), want)) << "r " << c.r;
    State s = m.init_state(1);
    EXPECT_TRUE(all_close(forward_by_steps(m, x, s), want)) << "r " << c.r << " steps";
  }
}

// What is compared: the mixer's output in "distinct" mode against ReLiT's exact factorised
// recurrence on the same gated features (and the same W_o), relative error over a 64-token
// sequence. Why it can fall as r grows: AReLiT's Σ_l ṽ^l k̃^lᵀ is Σ_{i,j} K(i,j) ṽ_i k̃_jᵀ with
// K = (r/2)δ_ij exactly for |i-j| < 2r (but for pairs with 2r | i+j), and the decays make old
// tokens fade, so only a bounded range of tick differences matters: once 2r covers it, only the
// aliased pairs are left, and they get rarer (1 in 2r) as r grows.
TEST(Arelit, DistinctModeTendsToRelitAsRGrows) {
  Tensor x = random({2, 64, kD}, DType::f64, 9);
  std::vector<double> errors;
  for (int64_t r : {1, 2, 4, 8, 16, 32}) {
    ArelitMixer m(config(r, ArelitMode::distinct));
    const Features f = features_of(m.features(), x);
    const Tensor relit = project(m.features(), naive_relit(f, 1e-5), f);
    errors.push_back(rel_error(m.forward(x, nullptr), relit));
    std::printf("distinct r %2lld: relative error against ReLiT %.4g\n", (long long)r,
                errors.back());
  }
  {
    ArelitMixer ref(config(2, ArelitMode::reference));
    const Features f = features_of(ref.features(), x);
    std::printf(
        "reference r  2: relative error against ReLiT %.4g (c = 2r; W_o would absorb the scale)\n",
        rel_error(ref.forward(x, nullptr), project(ref.features(), naive_relit(f, 1e-5), f)));
  }
  for (size_t i = 1; i < errors.size(); ++i) EXPECT_LT(errors[i], errors[i - 1]) << "r index " << i;
  EXPECT_LT(errors.back(), 0.2 * errors.front());  // measured: 1.65 at r = 1, 0.166 at r = 32
}

// relit.md 1.5: the paper config (d_model 128, H 4, d 64, η 4, r 2) keeps
// H·(r(ηd + d) + ηd) = 4·(2·320 + 256) = 3,584 floats per layer (14,336 for 4 layers), plus the
// tick; it does not grow with the context.
TEST(Arelit, StateBytesOfThePaperConfig) {
  ArelitConfig c;
  c.d_model = 128, c.heads = 4, c.head_dim = 64, c.eta = 4, c.r = 2, c.mode = ArelitMode::reference;
  ArelitMixer m(c);
  EXPECT_EQ(4 * 3584, 14336);
  EXPECT_EQ(m.state_bytes(1), 3584u * sizeof(float) + sizeof(int64_t));
  EXPECT_EQ(m.state_bytes(1000000), m.state_bytes(1));
  State s = m.init_state(1);
  for (int t = 0; t < 20; ++t) m.step(random({1, 128}, DType::f32, 30 + t), s);
  EXPECT_EQ(s.bytes(), m.state_bytes(1));
  EXPECT_TRUE(m.constant_state());
}

TEST(Arelit, BadConfigAndState) {
  using nlohmann::json;
  expect_error(
      [] {
        make_mixer({{"type", "arelit"}, {"mode", "fast"}}, kD, 0, DType::f32);
      },
      {"[config]", "arelit", "fast"});
  expect_error(
      [] {
        make_mixer({{"type", "arelit"}, {"r", 0}}, kD, 0, DType::f32);
      },
      {"[config]", "\"r\"", "between 1 and 1024"});
  expect_error(
      [] {
        make_mixer({{"type", "arelit"}, {"eta", 0}}, kD, 0, DType::f32);
      },
      {"[config]", "\"eta\""});
  expect_error(
      [] {
        make_mixer({{"type", "arelit"}, {"rank", 2}}, kD, 0, DType::f32);
      },
      {"[config]", "rank"});
  expect_error(
      [] {
        make_mixer({{"type", "arelit"}, {"r", 2.5}}, kD, 0, DType::f32);
      },
      {"[config]", "\"r\"", "integer"});
  auto m = make_mixer({{"type", "arelit"}, {"heads", 2}}, kD, 0, DType::f32);
  State s = m->init_state(1);
  expect_error([&] { m->step(random({3, kD}, DType::f32, 1), s); }, {"[arelit]", "state v"});
  expect_error(
      [&] {
        m->forward(random({2, 4, kD + 1}, DType::f32, 1), nullptr);
      },
      {"[arelit]", "[2, 4, 17]"});
}
