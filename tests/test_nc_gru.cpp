// NCGRUCell (rill/nn/nc_gru_cell.h): W_c orthogonal at initialisation and after 200 Adam steps;
// W_c equal to (I + A)^{-1} (I - A) D formed here by a Gauss-Jordan inverse in double, with
// det W_c = (-1)^negative_ones; the Cayley initialisation's rotation blocks; the whole step (both
// reset forms) against a hand computation in double; modReLU and its gradient by hand; the step
// bounded by h and the candidate; f64 central differences through the cpu kernels and the ref
// oracle w.r.t. x, h and every parameter; ref and cpu agreement; configuration and shape errors.
#include <cmath>
#include <numbers>
#include <vector>

#include "rill/nn/nc_gru_cell.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "rill/optim/adamw.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::nn;
using namespace rill::testing;

namespace {

constexpr DType f32 = DType::f32, f64 = DType::f64;
using Vec = std::vector<double>;

double sigmoid_ref(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Inverse of m [n, n] by Gauss-Jordan elimination with partial pivoting, in double: a route to
// (I + A)^{-1} that shares nothing with the solve op.
Vec inverse(Vec m, int64_t n) {
  Vec inv(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) inv[i * n + i] = 1.0;
  for (int64_t k = 0; k < n; ++k) {
    int64_t p = k;
    for (int64_t i = k + 1; i < n; ++i)
      if (std::abs(m[i * n + k]) > std::abs(m[p * n + k])) p = i;
    for (int64_t j = 0; j < n; ++j) std::swap(m[k * n + j], m[p * n + j]);
    for (int64_t j = 0; j < n; ++j) std::swap(inv[k * n + j], inv[p * n + j]);
    const double piv = m[k * n + k];
    for (int64_t j = 0; j < n; ++j) m[k * n + j] /= piv, inv[k * n + j] /= piv;
    for (int64_t i = 0; i < n; ++i) {
      if (i == k) continue;
      const double f = m[i * n + k];
      for (int64_t j = 0; j < n; ++j) m[i * n + j] -= f * m[k * n + j];
      for (int64_t j = 0; j < n; ++j) inv[i * n + j] -= f * inv[k * n + j];
    }
  }
  return inv;
}

// Determinant by elimination with partial pivoting, in double.
double determinant(Vec m, int64_t n) {
  double det = 1.0;
  for (int64_t k = 0; k < n; ++k) {
    int64_t p = k;
    for (int64_t i = k + 1; i < n; ++i)
      if (std::abs(m[i * n + k]) > std::abs(m[p * n + k])) p = i;
    if (p != k) {
      for (int64_t j = 0; j < n; ++j) std::swap(m[k * n + j], m[p * n + j]);
      det = -det;
    }
    det *= m[k * n + k];
    for (int64_t i = k + 1; i < n; ++i) {
      const double f = m[i * n + k] / m[k * n + k];
      for (int64_t j = k; j < n; ++j) m[i * n + j] -= f * m[k * n + j];
    }
  }
  return det;
}

// W_c [H, H] = (I + A)^{-1} (I - A) D from the cell's P, with D's -1 entries last.
Vec naive_wc(const NCGRUCell& cell) {
  const int64_t n = cell.hidden;
  const Vec p = cell.cayley_p.to_vector<double>();
  Vec plus(n * n), minus_d(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double a = p[i * n + j] - p[j * n + i], id = i == j ? 1.0 : 0.0;
      const double d = j >= n - cell.negative_ones ? -1.0 : 1.0;
      plus[i * n + j] = id + a;
      minus_d[i * n + j] = (id - a) * d;
    }
  const Vec inv = inverse(plus, n);
  Vec w(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) w[i * n + j] += inv[i * n + k] * minus_d[k * n + j];
  return w;
}

// max |W^T W - I| and max |W W^T - I|.
double orthogonality_error(const Tensor& w) {
  const int64_t n = w.size(0);
  const Vec v = w.to_vector<double>();
  double worst = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double wtw = 0, wwt = 0;
      for (int64_t k = 0; k < n; ++k)
        wtw += v[k * n + i] * v[k * n + j], wwt += v[i * n + k] * v[j * n + k];
      const double id = i == j ? 1.0 : 0.0;
      worst = std::max({worst, std::abs(wtw - id), std::abs(wwt - id)});
    }
  return worst;
}

// One step by hand in double, every intermediate kept: x [B, in], h [B, H] row-major.
struct Step {
  Vec c, h2;  // [B, H]
};
Step by_hand(const NCGRUCell& cell, const Vec& x, const Vec& h, int64_t batch) {
  const int64_t n = cell.hidden, in = cell.weight_ih.size(1);
  const Vec wih = cell.weight_ih.to_vector<double>(), bih = cell.bias_ih.to_vector<double>();
  const Vec whh = cell.weight_hh.to_vector<double>(), bc = cell.bias_c.to_vector<double>();
  const Vec wc = naive_wc(cell);
  Step s{Vec(batch * n), Vec(batch * n)};
  for (int64_t b = 0; b < batch; ++b) {
    const double* xb = &x[b * in];
    const double* hb = &h[b * n];
    auto input_part = [&](int64_t row) {  // (W_i x + b_i)[row] of the stacked [3H] gates
      double acc = bih[row];
      for (int64_t j = 0; j < in; ++j) acc += wih[row * in + j] * xb[j];
      return acc;
    };
    auto hidden_part = [&](int64_t row) {  // (W_h h)[row] of the stacked [2H] gates
      double acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += whh[row * n + j] * hb[j];
      return acc;
    };
    Vec r(n), u(n);
    for (int64_t k = 0; k < n; ++k) {
      r[k] = sigmoid_ref(input_part(k) + hidden_part(k));
      u[k] = sigmoid_ref(input_part(n + k) + hidden_part(n + k));
    }
    for (int64_t k = 0; k < n; ++k) {
      double rec = 0;
      if (cell.reset == NCGRUReset::after_matmul) {
        for (int64_t j = 0; j < n; ++j) rec += wc[k * n + j] * hb[j];
        rec *= r[k];
      } else {
        for (int64_t j = 0; j < n; ++j) rec += wc[k * n + j] * r[j] * hb[j];
      }
      const double z = input_part(2 * n + k) + rec;
      const double sign = z > 0 ? 1.0 : (z < 0 ? -1.0 : 0.0);
      const double c = std::max(std::abs(z) + bc[k], 0.0) * sign;
      s.c[b * n + k] = c;
      s.h2[b * n + k] = u[k] * hb[k] + (1 - u[k]) * c;
    }
  }
  return s;
}

// Gives P general (non-block) values, so that W_c is a dense orthogonal matrix.
void randomise_p(NCGRUCell& cell, uint64_t seed, double scale = 0.5) {
  cell.cayley_p.copy_(mul(random({cell.hidden, cell.hidden}, cell.cayley_p.dtype(), seed), scale));
}

Tensor leaf(const Tensor& t) {
  Tensor l = t.contiguous().detach().clone();
  l.set_requires_grad(true);
  return l;
}

}  // namespace

TEST(NCGRUCell, ParametersAndCayleyInit) {
  const int64_t in = 3, n = 7;
  NCGRUCell cell(in, n, 11, f64);
  std::vector<std::string> names;
  for (const auto& p : cell.named_parameters()) names.push_back(p.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"weight_ih", "bias_ih", "weight_hh", "cayley_p", "bias_c"}));
  EXPECT_EQ(cell.num_parameters(), 3 * n * in + 3 * n + 2 * n * n + n * n + n);
  for (double b : cell.bias_c.to_vector<double>()) EXPECT_LE(std::abs(b), 0.01);
  // P: tan(t_k / 2) with t_k in (0, pi/2) at (2k, 2k+1), zero elsewhere. W_c (D = I) is then
  // block diagonal, each block a rotation by t_k: cos t_k = (1 - s^2) / (1 + s^2) on the
  // diagonal, -+sin t_k = -+2 s / (1 + s^2) off it; the odd last unit is left alone (1).
  const Vec p = cell.cayley_p.to_vector<double>(), w = cell.recurrent_matrix().to_vector<double>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const bool block_entry = i % 2 == 0 && j == i + 1;
      if (!block_entry) {
        EXPECT_EQ(p[i * n + j], 0.0) << i << "," << j;
        continue;
      }
      const double s = p[i * n + j];
      EXPECT_GT(s, 0.0);
      EXPECT_LT(s, std::tan(std::numbers::pi / 4));
      const double cos_t = (1 - s * s) / (1 + s * s), sin_t = 2 * s / (1 + s * s);
      EXPECT_NEAR(w[i * n + i], cos_t, 1e-12);
      EXPECT_NEAR(w[j * n + j], cos_t, 1e-12);
      EXPECT_NEAR(w[i * n + j], -sin_t, 1e-12);
      EXPECT_NEAR(w[j * n + i], sin_t, 1e-12);
    }
  EXPECT_NEAR(w[(n - 1) * n + n - 1], 1.0, 1e-12);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i / 2 != j / 2) {
        EXPECT_NEAR(w[i * n + j], 0.0, 1e-12) << i << "," << j;
      }
  // The same seed gives the same cell; another seed another one.
  EXPECT_TRUE(bitwise_equal(NCGRUCell(in, n, 11, f64).cayley_p, cell.cayley_p));
  EXPECT_FALSE(all_close(NCGRUCell(in, n, 12, f64).cayley_p, cell.cayley_p));
}

TEST(NCGRUCell, RecurrentMatrixIsOrthogonalAtInit) {
  for (int64_t n : {1, 2, 7, 16})
    for (int64_t neg : {0, 1, 3}) {
      if (neg > n) continue;
      for (Backend be : {Backend::ref, Backend::cpu}) {
        BackendGuard guard(be);
        NCGRUCell cell(4, n, 5 + n, f64, neg);
        Tensor w = cell.recurrent_matrix();
        EXPECT_EQ(w.shape(), Shape({n, n}));
        EXPECT_LT(orthogonality_error(w), 1e-10) << n << " " << neg << " " << backend_name(be);
        randomise_p(cell, 3, 2.0);  // a dense, far-from-identity W_c
        EXPECT_LT(orthogonality_error(cell.recurrent_matrix()), 1e-10) << n << " " << neg;
        NCGRUCell cell32(4, n, 5 + n, f32, neg);
        randomise_p(cell32, 3, 2.0);
        EXPECT_LT(orthogonality_error(cell32.recurrent_matrix()), 1e-5) << n << " " << neg;
      }
    }
}

// W_c against the definition formed independently, and its determinant: det of a Cayley
// transform is 1 (its eigenvalues are conjugate pairs on the unit circle, and 1), so
// det W_c = det D = (-1)^negative_ones.
TEST(NCGRUCell, RecurrentMatrixIsTheScaledCayleyTransform) {
  const int64_t n = 6;
  for (int64_t neg = 0; neg <= n; ++neg)
    for (Backend be : {Backend::ref, Backend::cpu}) {
      BackendGuard guard(be);
      NCGRUCell cell(2, n, 21, f64, neg);
      randomise_p(cell, 22 + neg);
      const Tensor w = cell.recurrent_matrix();
      EXPECT_TRUE(all_close(w, Tensor::from_vector<double>(naive_wc(cell), {n, n})))
          << neg << " " << backend_name(be);
      EXPECT_NEAR(determinant(w.to_vector<double>(), n), neg % 2 ? -1.0 : 1.0, 1e-10) << neg;
      const Vec d = cell.cayley_d.to_vector<double>();
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(d[i], i >= n - neg ? -1.0 : 1.0);
    }
}

// Training moves P far from its start; W_c stays orthogonal to rounding because it is formed
// exactly from whatever P the optimiser produced.
TEST(NCGRUCell, StaysOrthogonalUnderAdam) {
  const int64_t in = 3, n = 8, batch = 4, steps = 6;
  NCGRUCell cell(in, n, 31, f64, 2);
  const Tensor p0 = cell.cayley_p.clone();
  std::vector<Tensor> xs;
  for (int64_t t = 0; t < steps; ++t) xs.push_back(random({batch, in}, f64, 40 + t));
  const Tensor h0 = random({batch, n}, f64, 50), target = random({batch, n}, f64, 51);
  optim::AdamW opt(optim::single_group(cell, 0.0), 0.05);
  auto loss_fn = [&] {
    Tensor w = cell.recurrent_matrix(), h = h0;
    for (const Tensor& x : xs) h = cell.forward(x, h, w);
    return mean(mul(sub(h, target), sub(h, target)));
  };
  const double first = loss_fn().item<double>();
  for (int i = 0; i < 200; ++i) {
    opt.zero_grad();
    loss_fn().backward();
    opt.step();
  }
  const double last = loss_fn().item<double>();
  EXPECT_LT(last, 0.5 * first);
  double moved = 0;
  const Vec p0v = p0.to_vector<double>(), p1v = cell.cayley_p.to_vector<double>();
  for (size_t i = 0; i < p0v.size(); ++i) moved = std::max(moved, std::abs(p1v[i] - p0v[i]));
  EXPECT_GT(moved, 0.3) << "P hardly moved: the test would not exercise a trained W_c";
  EXPECT_LT(orthogonality_error(cell.recurrent_matrix()), 1e-10);
  EXPECT_NEAR(determinant(cell.recurrent_matrix().to_vector<double>(), n), 1.0, 1e-10);
}

TEST(NCGRUCell, MatchesHandComputation) {
  const int64_t in = 4, n = 5, batch = 3;
  for (NCGRUReset form : {NCGRUReset::after_matmul, NCGRUReset::before_matmul}) {
    NCGRUCell cell(in, n, 61, f64, 2, form);
    randomise_p(cell, 62);
    Tensor x = random({batch, in}, f64, 63), h = random({batch, n}, f64, 64);
    const Step s = by_hand(cell, x.to_vector<double>(), h.to_vector<double>(), batch);
    Tensor out = cell.forward(x, h);
    EXPECT_TRUE(all_close(out, Tensor::from_vector<double>(s.h2, {batch, n})));
    // The precomputed-W_c form is the same computation.
    EXPECT_TRUE(bitwise_equal(cell.forward(x, h, cell.recurrent_matrix()), out));
    // Strided inputs give the same step.
    EXPECT_TRUE(all_close(
        cell.forward(random_strided({batch, in}, f64, 63), random_strided({batch, n}, f64, 64)),
        cell.forward(random_strided({batch, in}, f64, 63).contiguous(),
                     random_strided({batch, n}, f64, 64).contiguous())));
  }
  // The two forms are different cells.
  NCGRUCell a(in, n, 61, f64, 0, NCGRUReset::after_matmul);
  NCGRUCell b(in, n, 61, f64, 0, NCGRUReset::before_matmul);
  Tensor x = random({batch, in}, f64, 65), h = random({batch, n}, f64, 66);
  EXPECT_FALSE(all_close(a.forward(x, h), b.forward(x, h)));
}

TEST(NCGRUCell, ModReLUByHand) {
  // Entries: positive and negative z, z = 0, and |z| below -b (a dead unit).
  const Vec z = {1.5, -2.0, 0.0, 0.3, -0.3, 0.05};
  const Vec b = {0.25, -0.5, 0.1, -0.4, -0.4, 0.0};
  const Vec expected = {1.75, -1.5, 0.0, 0.0, -0.0, 0.05};
  const Vec dz = {1, 1, 0, 0, 0, 1};   // 1 where |z| + b > 0 and z != 0
  const Vec db = {1, -1, 0, 0, 0, 1};  // sign(z) where |z| + b > 0
  for (Backend be : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(be);
    Tensor zt = leaf(Tensor::from_vector<double>(z, {6})),
           bt = leaf(Tensor::from_vector<double>(b, {6}));
    Tensor c = modrelu(zt, bt);
    EXPECT_EQ(c.to_vector<double>(), expected) << backend_name(be);
    sum(c).backward();
    EXPECT_EQ(zt.grad().to_vector<double>(), dz) << backend_name(be);
    EXPECT_EQ(bt.grad().to_vector<double>(), db) << backend_name(be);
  }
  // The bias broadcasts over a batch.
  Tensor zb = Tensor::from_vector<double>({1.0, -1.0, 2.0, -2.0}, {2, 2});
  EXPECT_EQ(modrelu(zb, Tensor::from_vector<double>({0.5, -0.5}, {2})).to_vector<double>(),
            Vec({1.5, -0.5, 2.5, -1.5}));
}

// u in (0, 1) makes h' a convex combination of h and c: it lies between them, so
// |h'| <= max(|h|, |c|), step after step, even with inputs large enough to saturate the gates.
TEST(NCGRUCell, StepIsBounded) {
  const int64_t in = 3, n = 6, batch = 5;
  for (NCGRUReset form : {NCGRUReset::after_matmul, NCGRUReset::before_matmul}) {
    NCGRUCell cell(in, n, 71, f64, 1, form);
    Tensor w = cell.recurrent_matrix(), h = random({batch, n}, f64, 72);
    for (int t = 0; t < 50; ++t) {
      Tensor x = mul(random({batch, in}, f64, 80 + t), t % 2 ? 10.0 : 1.0);
      const Vec hv = h.to_vector<double>();
      const Step s = by_hand(cell, x.to_vector<double>(), hv, batch);
      h = cell.forward(x, h, w);
      const Vec h2 = h.to_vector<double>();
      for (int64_t i = 0; i < batch * n; ++i) {
        const double lo = std::min(hv[i], s.c[i]), hi = std::max(hv[i], s.c[i]);
        const double slack = 1e-12 * (1 + std::abs(hi) + std::abs(lo));
        ASSERT_GE(h2[i], lo - slack) << "step " << t << " element " << i;
        ASSERT_LE(h2[i], hi + slack) << "step " << t << " element " << i;
        ASSERT_LE(std::abs(h2[i]), std::max(std::abs(hv[i]), std::abs(s.c[i])) + slack);
      }
    }
  }
}

// Central differences in f64 through the kernels users run (cpu) and through the oracle (ref),
// w.r.t. x, h and every parameter, including P through the solve.
TEST(NCGRUCell, Gradcheck) {
  const int64_t in = 3, n = 4, batch = 2;
  for (NCGRUReset form : {NCGRUReset::after_matmul, NCGRUReset::before_matmul})
    for (Backend be : {Backend::cpu, Backend::ref}) {
      NCGRUCell cell(in, n, 91, f64, 1, form);
      randomise_p(cell, 92);
      Tensor x = leaf(random({batch, in}, f64, 93)), h = leaf(random({batch, n}, f64, 94));
      std::vector<Tensor> wrt = {x, h};
      for (const Tensor& p : cell.parameters()) wrt.push_back(p);
      const std::string what =
          fmt::format("nc_gru_cell {} {}", form == NCGRUReset::after_matmul ? "after" : "before",
                      backend_name(be));
      gradcheck_leaves([&] { return cell.forward(x, h); }, wrt, what, be);
      // Three steps sharing one W_c: P's gradient sums over the steps.
      gradcheck_leaves(
          [&] {
            Tensor w = cell.recurrent_matrix(), s = h;
            for (int t = 0; t < 3; ++t) s = cell.forward(mul(x, double(t + 1)), s, w);
            return s;
          },
          wrt, what + " three steps", be);
    }
}

TEST(NCGRUCell, BackendsAgree) {
  const int64_t in = 5, n = 12, batch = 4;
  for (DType dt : {f32, f64}) {
    NCGRUCell cell(in, n, 101, dt, 3);
    randomise_p(cell, 102);
    expect_backends_agree_with_grad(
        [&](const std::vector<Tensor>& v) {
          cell.cayley_p = v[2], cell.weight_hh = v[3];
          return cell.forward(v[0], v[1]);
        },
        {random({batch, in}, dt, 103), random({batch, n}, dt, 104), cell.cayley_p.detach(),
         cell.weight_hh.detach()},
        fmt::format("nc_gru_cell {}", dtype_name(dt)));
  }
}

TEST(NCGRUCell, BadConfigurationAndInput) {
  expect_error([] { NCGRUCell(3, 4, 0, f64, -1); },
               {"[nc_gru_cell]", "negative_ones", "[0, hidden = 4]", "-1"});
  expect_error([] { NCGRUCell(3, 4, 0, f64, 5); },
               {"[nc_gru_cell]", "negative_ones", "[0, hidden = 4]", "5"});
  expect_error([] { NCGRUCell(3, 0, 0, f64); }, {"[nc_gru_cell]", "hidden", ">= 1"});
  expect_error([] { NCGRUCell(0, 3, 0, f64); }, {"[nc_gru_cell]", "input", ">= 1"});
  expect_error([] { NCGRUCell(3, 4, 0, DType::i64); }, {"[nc_gru_cell]", "f32 or f64", "i64"});
  NCGRUCell cell(3, 4, 0, f64, 4);  // every entry of D -1 is allowed
  Tensor x = random({2, 3}, f64, 1), h = random({2, 4}, f64, 2);
  expect_error([&] { cell.forward(random({2, 4}, f64, 1), h); }, {"[nc_gru_cell]", "[2, 4]"});
  expect_error([&] { cell.forward(x, random({3, 4}, f64, 1)); }, {"[nc_gru_cell]", "[3, 4]"});
  expect_error(
      [&] {
        cell.forward(x, h, random({4, 3}, f64, 1));
      },
      {"[nc_gru_cell]", "w_c", "[4, 4]", "[4, 3]"});
  expect_error([&] { cell.forward(x, h, Tensor()); }, {"[nc_gru_cell]", "w_c", "undefined"});
}
