// The linear scan op h_t = a_t h_{t-1} + b_t: outputs and gradients against naive f64 loops written
// here (with a broadcast a), cpu against ref at shapes that do and do not chunk across time, f64
// central-difference gradients, thread invariance, resets (a_t = 0) and underflowing decays, and
// bad input.
#include <cmath>

#include "rill/autograd/grad_mode.h"
#include "rill/backend/cpu/linear_scan.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/linear_scan.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

// Naive f64 reference for b [B,T,R,D] with a [B,T,1,D] (shared by the R rows), h0 [B,R,D], and the
// loss sum(h * w): the output by the recurrence, and the gradients by their closed forms,
//   dL/db_s = sum_{t >= s} w_t prod_{u = s+1..t} a_u,  dL/da_s = dL/db_s h_{s-1} (summed over R),
//   dL/dh0 = a_0 dL/db_0,
// an O(T^2) double sum, independent of the kernels' reverse scan.
struct Naive {
  std::vector<double> h, da, db, dh0;
};

Naive naive(const Tensor& at, const Tensor& bt, const Tensor& h0t, const Tensor& wt) {
  const int64_t B = bt.size(0), T = bt.size(1), R = bt.size(2), D = bt.size(3);
  const auto a = at.to_vector<double>(), b = bt.to_vector<double>(), h0 = h0t.to_vector<double>(),
             w = wt.to_vector<double>();
  auto ai = [&](int64_t i, int64_t t, int64_t d) { return a[(i * T + t) * D + d]; };
  auto bi = [&](int64_t i, int64_t t, int64_t r, int64_t d) {
    return ((i * T + t) * R + r) * D + d;
  };
  Naive n;
  n.h.resize(b.size());
  n.db.resize(b.size());
  n.da.assign(a.size(), 0.0);
  n.dh0.resize(h0.size());
  for (int64_t i = 0; i < B; ++i)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t d = 0; d < D; ++d) {
        double prev = h0[(i * R + r) * D + d];
        for (int64_t t = 0; t < T; ++t)
          n.h[bi(i, t, r, d)] = prev = ai(i, t, d) * prev + b[bi(i, t, r, d)];
        for (int64_t s = 0; s < T; ++s) {
          double g = 0, p = 1;
          for (int64_t t = s; t < T; ++t) {
            if (t > s) p *= ai(i, t, d);
            g += w[bi(i, t, r, d)] * p;
          }
          n.db[bi(i, s, r, d)] = g;
          const double hp = s > 0 ? n.h[bi(i, s - 1, r, d)] : h0[(i * R + r) * D + d];
          n.da[(i * T + s) * D + d] += g * hp;
        }
        n.dh0[(i * R + r) * D + d] = ai(i, 0, d) * n.db[bi(i, 0, r, d)];
      }
  return n;
}

Tensor as(const std::vector<double>& v, const Tensor& like) {
  return Tensor::from_vector(v, like.shape()).to(like.dtype());
}

}  // namespace

// Outputs and all three gradients against the naive loops, for both backends and dtypes, with a
// broadcast over R and T long enough (600 steps, one lane tile) that the cpu kernel chunks.
TEST(LinearScan, MatchesNaiveLoopsWithBroadcastDecay) {
  for (int64_t T : {1, 9, 600})
    for (DType dt : {DType::f32, DType::f64})
      for (Backend be : {Backend::ref, Backend::cpu}) {
        BackendGuard guard(be);
        const std::string what = fmt::format("T {} {} {}", T, dtype_name(dt), backend_name(be));
        Tensor a = random_uniform({2, T, 1, 5}, dt, 1, 0.5, 1.0).set_requires_grad(true);
        Tensor b = random({2, T, 3, 5}, dt, 2).set_requires_grad(true);
        Tensor h0 = random({2, 3, 5}, dt, 3).set_requires_grad(true);
        Tensor w = random({2, T, 3, 5}, dt, 4);
        Tensor h = linear_scan(a, b, h0);
        sum(mul(h, w)).backward();
        const Naive n = naive(a.detach(), b.detach(), h0.detach(), w);
        // f32 over 600 steps accumulates rounding on every path: the tolerance grows with T.
        const double tol = dt == DType::f32 ? tolerance(dt) * std::max<double>(1, T / 10) : -1;
        EXPECT_TRUE(all_close(h, as(n.h, b), tol)) << what;
        EXPECT_TRUE(all_close(b.grad(), as(n.db, b), tol)) << what << " db";
        EXPECT_TRUE(all_close(a.grad(), as(n.da, a), tol)) << what << " da";
        EXPECT_TRUE(all_close(h0.grad(), as(n.dh0, h0), tol)) << what << " dh0";
      }
}

// cpu against ref, outputs and gradients, at T = 1, 7, 1000 with few lanes (B*D small: the kernel
// chunks across time) and many (one lane tile per unit, no chunks), a plain and a broadcast a.
TEST(LinearScan, CpuMatchesRefAcrossChunking) {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {{{1, 1, 3}, {1, 1, 3}},
                                   {{2, 7, 1}, {2, 7, 1}},
                                   {{1, 1000, 3}, {1, 1000, 3}},
                                   {{2, 1000, 1}, {2, 1000, 1}},
                                   {{1, 1000, 1, 40}, {1, 1000, 2, 40}},
                                   {{3, 1000, 600}, {3, 1000, 600}},
                                   {{20, 7, 300}, {20, 7, 300}},
                                   {{20, 300, 1, 300}, {20, 300, 1, 300}}};
  for (const Case& c : cases) {
    int64_t d = 1;
    for (size_t i = 2; i < c.b.size(); ++i) d *= c.b[i];
    const int64_t chunks = cpu::linear_scan_chunks(c.b[0], c.b[1], d);
    const std::string what =
        fmt::format("a {} b {} ({} chunks)", shape_str(c.a), shape_str(c.b), chunks);
    if (c.b[1] == 1000 && c.b[0] * d <= 80) {
      EXPECT_GT(chunks, 1) << what;
    }
    if (c.b[0] * d >= 6000) {
      EXPECT_EQ(chunks, 1) << what;
    }
    Shape h0s = c.b;
    h0s.erase(h0s.begin() + 1);
    for (DType dt : {DType::f32, DType::f64})
      expect_backends_agree_with_grad(
          [](const std::vector<Tensor>& in) { return linear_scan(in[0], in[1], in[2]); },
          {random_uniform(c.a, dt, 5, 0.8, 1.0), random(c.b, dt, 6), random(h0s, dt, 7)},
          what + " " + dtype_name(dt), dt == DType::f32 ? 1e-4 : -1);
  }
}

TEST(LinearScan, Gradcheck) {
  gradcheck([](const std::vector<Tensor>& in) { return linear_scan(in[0], in[1], in[2]); },
            {random_uniform({2, 6, 1, 3}, DType::f64, 8, -1.0, 1.0),
             random({2, 6, 2, 3}, DType::f64, 9), random({2, 2, 3}, DType::f64, 10)},
            "broadcast a, h0");
  gradcheck(
      [](const std::vector<Tensor>& in) { return linear_scan(in[0], in[1], Tensor()); },
      {random_uniform({1, 5, 4}, DType::f64, 11, 0.0, 1.5), random({1, 5, 4}, DType::f64, 12)},
      "no h0");
}

// Forward and backward at chunked and unchunked shapes are bitwise identical on 1, 2, 3 threads.
TEST(LinearScan, ThreadInvariant) {
  for (const Shape& s : {Shape{1, 1000, 40}, Shape{2, 500, 3}, Shape{4, 64, 1000}})
    expect_thread_invariant(
        [&] {
          Tensor a = random_uniform(s, DType::f32, 13, 0.8, 1.0).set_requires_grad(true);
          Tensor b = random(s, DType::f32, 14).set_requires_grad(true);
          Tensor h0 = random({s[0], s[2]}, DType::f32, 15).set_requires_grad(true);
          Tensor h = linear_scan(a, b, h0);
          sum(mul(h, random(s, DType::f32, 16))).backward();
          return std::vector<Tensor>{h.detach(), a.grad(), b.grad(), h0.grad()};
        },
        shape_str(s));
}

// A reset is a_t = 0: from t on the scan equals a fresh one over the rest, and no gradient crosses
// it back into h0. Decays that underflow (1e-30 per step in f32) give finite values, equal to ref.
TEST(LinearScan, ZeroAndUnderflowingDecays) {
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(be);
    const int64_t T = 700, cut = 333;  // 5 chunks of 140 steps: the cut lies inside chunk 2
    Tensor a = random_uniform({1, T, 4}, DType::f64, 17, 0.9, 1.0);
    a.select(1, cut).fill_(0.0);
    Tensor b = random({1, T, 4}, DType::f64, 18);
    Tensor h0 = random({1, 4}, DType::f64, 19).set_requires_grad(true);
    Tensor h = linear_scan(a, b, h0);
    Tensor fresh = linear_scan(a.narrow(1, cut, T - cut), b.narrow(1, cut, T - cut));
    EXPECT_TRUE(all_close(h.narrow(1, cut, T - cut), fresh)) << backend_name(be);
    sum(h.narrow(1, cut, T - cut)).backward();
    EXPECT_TRUE(all_close(h0.grad(), Tensor::zeros({1, 4}, DType::f64))) << backend_name(be);
  }
  expect_backends_agree_with_grad(
      [](const std::vector<Tensor>& in) { return linear_scan(in[0], in[1], in[2]); },
      {Tensor::full({1, 900, 8}, 1e-30, DType::f32), random({1, 900, 8}, DType::f32, 20),
       random({1, 8}, DType::f32, 21)},
      "underflowing decays");
  NoGradGuard no_grad;
  Tensor h = linear_scan(Tensor::full({1, 900, 8}, 1e-30, DType::f32),
                         random({1, 900, 8}, DType::f32, 20));
  for (float v : h.to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
}

TEST(LinearScan, BadInput) {
  const Tensor b = random({2, 5, 3}, DType::f32, 22);
  expect_error(
      [&] {
        linear_scan(random({2, 5, 2}, DType::f32, 1), b);
      },
      {"[linear_scan]", "broadcast", "[2, 5, 2]", "[2, 5, 3]"});
  expect_error(
      [&] {
        linear_scan(random({2, 5, 3}, DType::f32, 1), b, random({2, 5, 3}, DType::f32, 2));
      },
      {"[linear_scan]", "h0", "[2, 3]"});
  expect_error([&] { linear_scan(random({5}, DType::f32, 1), random({5}, DType::f32, 2)); },
               {"[linear_scan]", "[B,T,...]"});
  expect_error(
      [&] {
        linear_scan(random({2, 5, 3}, DType::f64, 1), b);
      },
      {"[linear_scan]", "dtypes differ"});
  expect_error(
      [&] {
        linear_scan(Tensor::zeros({2, 5, 3}, DType::i64), Tensor::zeros({2, 5, 3}, DType::i64));
      },
      {"[linear_scan]", "f32 or f64"});
  expect_error([&] { linear_scan(Tensor(), b); }, {"[linear_scan]", "a"});
}
