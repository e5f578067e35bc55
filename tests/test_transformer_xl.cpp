// The Transformer-XL mixer (GTrXL's attention) beyond the mixer contract: the parallel form
// against a naive per-token f64 evaluation of the score equation written here; the kv_cache and
// no_cache steps against the parallel form (also after W_r changes under a kept position table);
// segmentation invariance; the state size of the paper's GTrXL; bad configs and states refused.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "rill/autograd/grad_mode.h"
#include "rill/mixers/registry.h"
#include "rill/mixers/transformer_xl.h"
#include "rill/ops/index.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

Tensor param(const Mixer& m, const std::string& name) {
  for (const auto& p : m.named_parameters())
    if (p.name == name) return p.tensor;
  ADD_FAILURE() << "no parameter " << name;
  return Tensor();
}

// out = x W^T for one token: x [D_in] (row `row` of a [N, D_in] buffer), W [D_out, D_in].
std::vector<double> project(const double* x, const Tensor& w) {
  const int64_t out = w.size(0), in = w.size(1);
  const double* wp = w.data<double>();
  std::vector<double> y(out, 0.0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) y[o] += wp[o * in + i] * x[i];
  return y;
}

// Per token, per head, straight from the equation, from a fresh state:
//   score_ij = (q_i.k_j + q_i.W_r R_{i-j} + u.k_j + v.W_r R_{i-j}) / sqrt(Dh), i-M <= j <= i, j >=
//   0
// R_r = [sin(r 10000^(-2k/D)), cos(r 10000^(-2k/D))], k < D/2.
Tensor naive(const Mixer& m, const Tensor& x, int64_t heads, int64_t dh, int64_t memory) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
  const Tensor wq = param(m, "proj.q.weight"), wk = param(m, "proj.k.weight");
  const Tensor wv = param(m, "proj.v.weight"), wo = param(m, "proj.o.weight");
  const Tensor wr = param(m, "w_r.weight"), u = param(m, "u"), v = param(m, "v");
  Tensor y = Tensor::zeros({b, t, d}, DType::f64);
  const double* xp = x.data<double>();
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t i = 0; i < t; ++i) {
      const std::vector<double> q = project(xp + (bi * t + i) * d, wq);
      std::vector<double> heads_out(heads * dh, 0.0);
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> scores, weights;
        std::vector<std::vector<double>> vals;
        for (int64_t j = std::max<int64_t>(0, i - memory); j <= i; ++j) {
          const std::vector<double> k = project(xp + (bi * t + j) * d, wk);
          vals.push_back(project(xp + (bi * t + j) * d, wv));
          std::vector<double> rel(d);
          for (int64_t c = 0; c < d / 2; ++c) {
            const double a = double(i - j) * std::pow(10000.0, -2.0 * double(c) / double(d));
            rel[c] = std::sin(a);
            rel[d / 2 + c] = std::cos(a);
          }
          const std::vector<double> p = project(rel.data(), wr);  // W_r R_{i-j}
          double s = 0;
          for (int64_t e = 0; e < dh; ++e) {
            const int64_t he = h * dh + e;
            s += q[he] * k[he] + q[he] * p[he] + u.data<double>()[he] * k[he] +
                 v.data<double>()[he] * p[he];
          }
          scores.push_back(s / std::sqrt(double(dh)));
        }
        double mx = -1e300, z = 0;
        for (double s : scores) mx = std::max(mx, s);
        for (double s : scores) z += std::exp(s - mx);
        for (size_t n = 0; n < scores.size(); ++n)
          for (int64_t e = 0; e < dh; ++e)
            heads_out[h * dh + e] += std::exp(scores[n] - mx) / z * vals[n][h * dh + e];
      }
      const std::vector<double> o = project(heads_out.data(), wo);
      for (int64_t c = 0; c < d; ++c) y.data<double>()[(bi * t + i) * d + c] = o[c];
    }
  return y;
}

std::shared_ptr<Mixer> make(const json& c, int64_t d, DType dt) { return make_mixer(c, d, 7, dt); }

Tensor by_steps(Mixer& m, const Tensor& x, State& s) {
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < x.size(1); ++t) outs.push_back(m.step(x.select(1, t), s).unsqueeze(1));
  return concat(outs, 1);
}

}  // namespace

// 13 tokens with memory 5: the first tokens see fewer than M, later ones exactly M + 1. u and v
// are set large so that dropping or misplacing either bias (or the sign of i - j) shows.
TEST(TransformerXL, ParallelFormMatchesTheNaiveEquation) {
  for (const char* mode : {"kv_cache", "no_cache"}) {
    const json c{{"type", "transformer_xl"},
                 {"heads", 2},
                 {"head_dim", 6},
                 {"memory", 5},
                 {"step_mode", mode}};
    auto m = make(c, 8, DType::f64);
    {
      NoGradGuard no_grad;
      param(*m, "u").copy_(random({2, 6}, DType::f64, 40));
      param(*m, "v").copy_(random({2, 6}, DType::f64, 41));
    }
    Tensor x = random({2, 13, 8}, DType::f64, 42);
    Tensor want = naive(*m, x, 2, 6, 5);
    EXPECT_TRUE(all_close(m->forward(x, nullptr), want)) << mode;
    State s = m->init_state(2);
    EXPECT_TRUE(all_close(m->forward(x, &s), want)) << mode << " with a state";
    State steps = m->init_state(2);
    EXPECT_TRUE(all_close(by_steps(*m, x, steps), want)) << mode << " steps";
  }
}

// Both step modes equal the parallel form and each other, outputs and (for the same mode) final
// state; then W_r changes in place (as an optimiser step does) and the kv_cache step must not
// read a stale position table.
TEST(TransformerXL, StepModesEqualTheParallelForm) {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = random({3, 40, 16}, dt, 50);
    Tensor ys[2];
    int n = 0;
    for (const char* mode : {"kv_cache", "no_cache"}) {
      auto m = make({{"type", "transformer_xl"}, {"heads", 4}, {"memory", 9}, {"step_mode", mode}},
                    16, dt);
      State whole = m->init_state(3), steps = m->init_state(3);
      Tensor y = m->forward(x, &whole);
      EXPECT_TRUE(all_close(by_steps(*m, x, steps), y)) << mode << " " << dtype_name(dt);
      for (const auto& [name, t] : whole.tensors())
        EXPECT_TRUE(is_floating(t.dtype()) ? bool(all_close(steps.get(name), t))
                                           : bool(bitwise_equal(steps.get(name), t)))
            << mode << " state " << name;
      ys[n++] = y;
      {
        NoGradGuard no_grad;
        Tensor w = param(*m, "w_r.weight");
        w.copy_(random(w.shape(), dt, 51));
      }
      Tensor next = random({3, 16}, dt, 52);
      State fork = steps.clone();
      EXPECT_TRUE(all_close(m->step(next, steps), m->forward(next.unsqueeze(1), &fork).squeeze(1)))
          << mode << " after W_r changed";
    }
    EXPECT_TRUE(all_close(ys[1], ys[0])) << "kv_cache and no_cache " << dtype_name(dt);
  }
}

// Pieces shorter than, equal to and longer than M, and single tokens, give the same outputs
// and the same final state as one pass.
TEST(TransformerXL, SegmentationInvariance) {
  for (const char* mode : {"kv_cache", "no_cache"}) {
    auto m = make({{"type", "transformer_xl"}, {"heads", 2}, {"memory", 7}, {"step_mode", mode}},
                  16, DType::f64);
    Tensor x = random({2, 45, 16}, DType::f64, 60);
    State whole = m->init_state(2);
    Tensor y = m->forward(x, &whole);
    State s = m->init_state(2);
    std::vector<Tensor> outs;
    int64_t t = 0;
    for (int64_t len : {3, 7, 1, 19, 1, 14}) {
      outs.push_back(m->forward(x.narrow(1, t, len), &s));
      t += len;
    }
    ASSERT_EQ(t, 45);
    EXPECT_TRUE(all_close(concat(outs, 1), y)) << mode;
    for (const auto& [name, v] : whole.tensors())
      EXPECT_TRUE(is_floating(v.dtype()) ? bool(all_close(s.get(name), v))
                                         : bool(bitwise_equal(s.get(name), v)))
          << mode << " state " << name;
  }
}

// The paper's GTrXL (papers/relit.md §1.5): d_model 128, 4 layers, H 4, Dh 64, memory 128. As
// coded (DI-engine) it keeps (L+1) M d_model = 81,920 floats per env: the embedding's output and
// every layer's output, the last never read. no_cache keeps each layer's M inputs, L M d_model =
// 65,536 floats (plus a count per layer); kv_cache keeps 2 H Dh M per layer, 4x that here since
// H Dh = 2 d_model.
TEST(TransformerXL, StateBytesOfThePapersGTrXL) {
  const int64_t layers = 4, d = 128, m = 128;
  const json base{{"type", "transformer_xl"}, {"heads", 4}, {"head_dim", 64}, {"memory", m}};
  json no_cache = base, kv = base;
  no_cache["step_mode"] = "no_cache";
  kv["step_mode"] = "kv_cache";
  auto a = make(no_cache, d, DType::f32), b = make(kv, d, DType::f32);
  EXPECT_EQ(a->state_bytes(1000), size_t(m * d * 4 + 8));
  EXPECT_EQ(b->state_bytes(1000), size_t(2 * 4 * 64 * m * 4 + 8));
  EXPECT_EQ(layers * (a->state_bytes(1) - 8) / 4, 65536u);
  EXPECT_EQ((layers + 1) * m * d, 81920);  // the accounting of the code as published
  EXPECT_EQ(layers * (b->state_bytes(1) - 8) / 4, 262144u);
  EXPECT_TRUE(a->constant_state() && b->constant_state());
  // The state keeps its size past the memory.
  for (auto* mx : {a.get(), b.get()}) {
    State s = mx->init_state(1);
    Tensor x = random({1, d}, DType::f32, 70);
    for (int t = 0; t < 140; ++t) mx->step(x, s);
    EXPECT_EQ(s.bytes(), mx->state_bytes(140));
  }
  // Per-token mixing FLOPs: kv_cache 6 H Dh (M+1); no_cache adds K, V of M inputs and W_r R.
  EXPECT_DOUBLE_EQ(b->mixing_flops_per_token(1000), 6.0 * 4 * 64 * 129);
  EXPECT_DOUBLE_EQ(a->mixing_flops_per_token(1000),
                   6.0 * 4 * 64 * 129 + 2.0 * 128 * 256 * (2 * 128 + 129));
  std::printf(
      "paper GTrXL, 4 layers: state no_cache %zu B, kv_cache %zu B; mixing MFLOP/token "
      "no_cache %.1f, kv_cache %.2f\n",
      layers * a->state_bytes(1), layers * b->state_bytes(1),
      layers * a->mixing_flops_per_token(1000) / 1e6,
      layers * b->mixing_flops_per_token(1000) / 1e6);
}

TEST(TransformerXL, BadConfigsAndStatesAreRefused) {
  for (const json& mem : {json(0), json(-3), json(1.5), json("8"), json(100000)})
    expect_error(
        [&] {
          make({{"type", "transformer_xl"}, {"memory", mem}}, 16, DType::f32);
        },
        {"[config]", "\"memory\""});
  expect_error(
      [&] {
        make({{"type", "transformer_xl"}, {"step_mode", "cache"}}, 16, DType::f32);
      },
      {"[config]", "\"step_mode\"", "cache"});
  expect_error(
      [&] {
        make({{"type", "transformer_xl"}, {"mem", 8}}, 16, DType::f32);
      },
      {"[config]", "unknown key \"mem\""});
  expect_error(
      [&] {
        make({{"type", "transformer_xl"}, {"heads", 3}}, 16, DType::f32);
      },
      {"[transformer_xl]", "divisible"});
  expect_error(
      [&] {
        make({{"type", "transformer_xl"}, {"heads", 3}}, 15, DType::f32);
      },
      {"[transformer_xl]", "even"});
  auto m = make({{"type", "transformer_xl"}, {"heads", 2}, {"memory", 4}}, 16, DType::f32);
  State s = m->init_state(2);
  expect_error(
      [&] {
        m->forward(random({3, 5, 16}, DType::f32, 1), &s);
      },
      {"[transformer_xl]", "state", "3 streams"});
  State bad = m->init_state(2);
  bad.set("count", Tensor::full({2}, 9, DType::i64));
  expect_error(
      [&] {
        m->forward(random({2, 5, 16}, DType::f32, 1), &bad);
      },
      {"[transformer_xl]", "count", "[0, 4]"});
}
