// The softmax scan op (Aaren's many-to-many attention with a fixed query): the cpu prefix scan
// (chunked and not) equals the paper's sequential recurrence (ref) and naive causal softmax
// attention written here with tensor ops, in f64, for outputs, lse and gradients; f64 central
// differences through the cpu kernels; scores of magnitude 1e4 and of -800; the operator's
// associativity and identity; causality; segmentation invariance and the step; resets; thread
// invariance; bad input. Two wrong formulations from public snippets are implemented here as
// negative controls and the parity check must reject them (it can fail).
#include <cmath>
#include <functional>
#include <limits>

#include "rill/autograd/grad_mode.h"
#include "rill/backend/cpu/softmax_scan.h"
#include "rill/backend/softmax_scan.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"
#include "rill/ops/softmax_scan.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Naive causal softmax attention of a fixed query, with tensor ops (autograd gives its
// gradients): the carried state is one more token in front (score lse0, value o0), every row t
// sees columns 0..t+1, and out = softmax(row) @ values, lse = logsumexp(row).
SoftmaxScanResult naive(const Tensor& s, const Tensor& v, const Tensor& lse0, const Tensor& o0) {
  const int64_t b = v.size(0), h = v.size(1), t = v.size(2);
  Tensor s_all = concat({lse0.unsqueeze(2), s}, 2);  // [B,H,T+1]
  Tensor v_all = concat({o0.unsqueeze(2), v}, 2);    // [B,H,T+1,D]
  Tensor future = Tensor::zeros({t, t + 1}, DType::i64);
  for (int64_t r = 0; r < t; ++r)
    for (int64_t c = r + 2; c <= t; ++c) future.data<int64_t>()[r * (t + 1) + c] = 1;
  Tensor rows = masked_fill(s_all.unsqueeze(2).expand({b, h, t, t + 1}), future, -kInf);
  return {matmul(softmax(rows, -1), v_all), logsumexp(rows, {-1})};
}

struct Inputs {
  Tensor s, v, lse0, o0;
};

Inputs inputs(int64_t b, int64_t h, int64_t t, int64_t d, DType dt, uint64_t seed,
              double score_scale = 2.0) {
  return {mul(random({b, h, t}, dt, seed), score_scale), random({b, h, t, d}, dt, seed + 1),
          mul(random({b, h}, dt, seed + 2), score_scale), random({b, h, d}, dt, seed + 3)};
}

// The largest |error| of a candidate scan of one sequence (scores s [T], values v [T*D], no
// carried state) against the definition, in f64: out_k = sum_{i<=k} e^{s_i - M} v_i / sum e^..
using Candidate = std::function<std::vector<double>(const std::vector<double>& s,
                                                    const std::vector<double>& v, int64_t d)>;
double parity_error(const Candidate& candidate, uint64_t seed) {
  const int64_t t = 40, d = 3;
  const auto s = mul(random({t}, DType::f64, seed), 3.0).to_vector<double>();
  const auto v = random({t, d}, DType::f64, seed + 1).to_vector<double>();
  const auto got = candidate(s, v, d);
  double worst = 0;
  for (int64_t k = 0; k < t; ++k) {
    double m = -kInf;
    for (int64_t i = 0; i <= k; ++i) m = std::max(m, s[i]);
    for (int64_t j = 0; j < d; ++j) {
      double num = 0, den = 0;
      for (int64_t i = 0; i <= k; ++i)
        num += std::exp(s[i] - m) * v[i * d + j], den += std::exp(s[i] - m);
      worst = std::max(worst, std::abs(got[k * d + j] - num / den));
    }
  }
  return worst;
}

// rill's op, under the active backend.
std::vector<double> op_candidate(const std::vector<double>& s, const std::vector<double>& v,
                                 int64_t d) {
  const int64_t t = int64_t(s.size());
  return softmax_scan(Tensor::from_vector(s, {1, 1, t}), Tensor::from_vector(v, {1, 1, t, d}))
      .out.to_vector<double>();
}

// Wrong formulation 1 (a vectorised "stable_scan_attention" snippet): every term scaled by its
// own prefix max exp(s_i - cummax_i) rather than the output's m_k.
std::vector<double> cummax_candidate(const std::vector<double>& s, const std::vector<double>& v,
                                     int64_t d) {
  const int64_t t = int64_t(s.size());
  std::vector<double> out(size_t(t * d));
  double cm = -kInf, den = 0;
  std::vector<double> num(size_t(d), 0.0);
  for (int64_t i = 0; i < t; ++i) {
    cm = std::max(cm, s[i]);
    const double e = std::exp(s[i] - cm);
    den += e;
    for (int64_t j = 0; j < d; ++j) out[i * d + j] = (num[j] += e * v[i * d + j]) / den;
  }
  return out;
}

// A Hillis-Steele scan of the elements (s_i, 1, v_i): pass j combines every element with the one
// offset(j) before it, until the offset reaches T.
std::vector<double> hillis_steele(const std::vector<double>& s, const std::vector<double>& v,
                                  int64_t d, const std::function<int64_t(int64_t)>& offset) {
  const int64_t t = int64_t(s.size());
  std::vector<double> m(s), u(size_t(t), 1.0), w(v);
  for (int64_t pass = 0; offset(pass) < t; ++pass) {
    const int64_t back = offset(pass);
    std::vector<double> m2(m), u2(u), w2(w);
    for (int64_t k = back; k < t; ++k) {
      // (element k - back) (+) (element k), in time order.
      m2[k] = m[k - back], u2[k] = u[k - back];
      for (int64_t j = 0; j < d; ++j) w2[k * d + j] = w[(k - back) * d + j];
      softmax_scan_combine(m2[k], u2[k], &w2[k * d], m[k], u[k], &w[k * d], d);
    }
    m.swap(m2), u.swap(u2), w.swap(w2);
  }
  std::vector<double> out(size_t(t * d));
  for (int64_t k = 0; k < t; ++k)
    for (int64_t j = 0; j < d; ++j) out[k * d + j] = w[k * d + j] / u[k];
  return out;
}

// Wrong formulation 2 (a numba Hillis-Steele kernel): offsets exp(pass) truncated (1, 2, 7, 20,
// ...) where they must be 2^pass, so some spans are skipped.
std::vector<double> hillis_steele_candidate(const std::vector<double>& s,
                                            const std::vector<double>& v, int64_t d) {
  return hillis_steele(s, v, d, [](int64_t pass) { return int64_t(std::exp(double(pass))); });
}

// The same scan with the right offsets 2^pass: the control that the harness above is fair.
std::vector<double> hillis_steele_right(const std::vector<double>& s, const std::vector<double>& v,
                                        int64_t d) {
  return hillis_steele(s, v, d, [](int64_t pass) { return int64_t(1) << pass; });
}

}  // namespace

// Both cpu forms (one running scan; chunks with carries) and the ref recurrence equal naive
// attention in f64, outputs and lse, with a carried state.
TEST(SoftmaxScan, EqualsNaiveAttentionInEveryForm) {
  ASSERT_EQ(cpu::softmax_scan_chunks(8, 300), 1);  // enough sequences: one running scan
  ASSERT_GT(cpu::softmax_scan_chunks(2, 300), 1);  // few: chunked, with carries
  for (auto [b, h, t] : {std::tuple{2, 4, 300}, std::tuple{1, 2, 300}, std::tuple{1, 1, 7}})
    for (Backend backend : {Backend::ref, Backend::cpu}) {
      BackendGuard guard(backend);
      const Inputs in = inputs(b, h, t, 5, DType::f64, 10 + t);
      const SoftmaxScanResult got = softmax_scan(in.s, in.v, in.lse0, in.o0);
      const SoftmaxScanResult want = naive(in.s, in.v, in.lse0, in.o0);
      const std::string what = fmt::format("{} [{},{},{}]", backend_name(backend), b, h, t);
      EXPECT_TRUE(all_close(got.out, want.out)) << what;
      EXPECT_TRUE(all_close(got.lse, want.lse)) << what;
      // A fresh state (no lse0): the same as a carried one of weight 0.
      const SoftmaxScanResult fresh = softmax_scan(in.s, in.v);
      const SoftmaxScanResult fresh_want =
          naive(in.s, in.v, Tensor::full({b, h}, -kInf, DType::f64), in.o0);
      EXPECT_TRUE(all_close(fresh.out, fresh_want.out)) << what << " fresh";
    }
}

// Gradients of scores, values, lse0 and o0, through a loss on both outputs: cpu, ref and
// autograd through naive attention agree in f64; and central differences through both backends
// (the cpu forward chunked here: one sequence of 130 steps).
TEST(SoftmaxScan, GradientsMatchNaiveAttentionAndFiniteDifferences) {
  for (auto [h, t] : {std::pair{3, 9}, std::pair{1, 150}}) {
    const Inputs in = inputs(2, h, t, 4, DType::f64, 40 + t);
    const Tensor wo = random({2, h, t, 4}, DType::f64, 50), wl = random({2, h, t}, DType::f64, 51);
    auto grads = [&](const std::function<SoftmaxScanResult(const std::vector<Tensor>&)>& f) {
      std::vector<Tensor> leaves;
      for (const Tensor& x : {in.s, in.v, in.lse0, in.o0})
        leaves.push_back(x.clone().set_requires_grad(true));
      const SoftmaxScanResult r = f(leaves);
      add(sum(mul(r.out, wo)), sum(mul(r.lse, wl))).backward();
      std::vector<Tensor> g;
      for (const Tensor& l : leaves) g.push_back(l.grad());
      return g;
    };
    const auto want =
        grads([](const std::vector<Tensor>& x) { return naive(x[0], x[1], x[2], x[3]); });
    for (Backend backend : {Backend::ref, Backend::cpu}) {
      BackendGuard guard(backend);
      const auto got =
          grads([](const std::vector<Tensor>& x) { return softmax_scan(x[0], x[1], x[2], x[3]); });
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(all_close(got[i], want[i]))
            << backend_name(backend) << " T " << t << " gradient of input " << i;
    }
  }
  const Inputs small = inputs(1, 1, 130, 2, DType::f64, 60);
  ASSERT_GT(cpu::softmax_scan_chunks(1, 130), 1);
  gradcheck(
      [](const std::vector<Tensor>& x) {
        const SoftmaxScanResult r = softmax_scan(x[0], x[1], x[2], x[3]);
        return concat({r.out.reshape({-1}), r.lse.reshape({-1})}, 0);
      },
      {small.s, small.v, small.lse0, small.o0}, "softmax_scan");
}

// Scores of magnitude 1e4 and scores all near -800 (where the paper's m0 = 0 underflows to 0/0):
// finite outputs and gradients in f32 and f64, equal to the definition.
TEST(SoftmaxScan, StableForHugeAndVeryNegativeScores) {
  for (DType dt : {DType::f32, DType::f64})
    for (Backend backend : {Backend::ref, Backend::cpu})
      for (int which = 0; which < 2; ++which) {
        BackendGuard guard(backend);
        Tensor s = which == 0 ? mul(random({1, 2, 200}, dt, 70), 1e4)
                              : add(random_uniform({1, 2, 200}, dt, 71, -1, 1), -800.0);
        Tensor v = random({1, 2, 200, 3}, dt, 72);
        Tensor sl = s.clone().set_requires_grad(true), vl = v.clone().set_requires_grad(true);
        const SoftmaxScanResult r = softmax_scan(sl, vl);
        add(sum(r.out), sum(r.lse)).backward();
        const std::string what = fmt::format("{} {} {}", dtype_name(dt), backend_name(backend),
                                             which == 0 ? "|s| ~ 1e4" : "s ~ -800");
        for (const Tensor& x : {r.out, r.lse, sl.grad(), vl.grad()})
          for (double e : x.to_vector<double>()) ASSERT_TRUE(std::isfinite(e)) << what;
        const SoftmaxScanResult want =
            naive(s.to(DType::f64), v.to(DType::f64), Tensor::full({1, 2}, -kInf, DType::f64),
                  Tensor::zeros({1, 2, 3}, DType::f64));
        EXPECT_TRUE(all_close(r.out.to(DType::f64), want.out, dt == DType::f32 ? 1e-5 : -1))
            << what;
      }
}

// (a (+) b) (+) c = a (+) (b (+) c), and (-inf, 0, 0) is the identity on both sides, exactly.
TEST(SoftmaxScan, OperatorIsAssociativeWithIdentity) {
  const int64_t d = 4;
  const auto r = random({64, d + 2}, DType::f64, 80).to_vector<double>();
  auto element = [&](int64_t i, double* out) {  // (m, u > 0, w)
    out[0] = 5 * r[i * (d + 2)], out[1] = std::exp(r[i * (d + 2) + 1]);
    for (int64_t j = 0; j < d; ++j) out[2 + j] = r[i * (d + 2) + 2 + j];
  };
  for (int64_t i = 0; i + 2 < 64; i += 3) {
    double a[d + 2], b[d + 2], c[d + 2], left[d + 2], right[d + 2], bc[d + 2];
    element(i, a), element(i + 1, b), element(i + 2, c);
    std::copy(a, a + d + 2, left);
    softmax_scan_combine(left[0], left[1], left + 2, b[0], b[1], b + 2, d);
    softmax_scan_combine(left[0], left[1], left + 2, c[0], c[1], c + 2, d);
    std::copy(b, b + d + 2, bc);
    softmax_scan_combine(bc[0], bc[1], bc + 2, c[0], c[1], c + 2, d);
    std::copy(a, a + d + 2, right);
    softmax_scan_combine(right[0], right[1], right + 2, bc[0], bc[1], bc + 2, d);
    // Compare the sets' (u e^m, w e^m), which do not depend on the max chosen.
    EXPECT_DOUBLE_EQ(left[0], right[0]) << i;
    EXPECT_NEAR(left[1], right[1], 1e-12 * left[1]) << i;
    for (int64_t j = 0; j < d; ++j)
      EXPECT_NEAR(left[2 + j], right[2 + j], 1e-12 * (std::abs(left[2 + j]) + left[1])) << i;
    double id[d + 2] = {-kInf, 0, 0, 0, 0, 0}, x[d + 2];
    std::copy(a, a + d + 2, x);
    softmax_scan_combine(x[0], x[1], x + 2, id[0], id[1], id + 2, d);  // a (+) identity
    for (int64_t j = 0; j < d + 2; ++j) EXPECT_EQ(x[j], a[j]) << i;
    softmax_scan_combine(id[0], id[1], id + 2, a[0], a[1], a + 2, d);  // identity (+) a
    for (int64_t j = 0; j < d + 2; ++j) EXPECT_EQ(id[j], a[j]) << i;
  }
}

// The parity check can fail: the two wrong formulations are rejected by the same harness that
// passes rill's kernels and a correct Hillis-Steele scan.
TEST(SoftmaxScan, ParityCheckRejectsTheWrongFormulations) {
  for (Backend backend : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(backend);
    EXPECT_LT(parity_error(op_candidate, 90), 1e-12) << backend_name(backend);
  }
  EXPECT_LT(parity_error(hillis_steele_right, 90), 1e-12);
  EXPECT_GT(parity_error(cummax_candidate, 90), 1e-3);
  EXPECT_GT(parity_error(hillis_steele_candidate, 90), 1e-3);
}

// Changing step t's score or value leaves every earlier output bitwise unchanged.
TEST(SoftmaxScan, Causal) {
  const Inputs in = inputs(1, 2, 400, 3, DType::f32, 100);  // chunked on the cpu
  const SoftmaxScanResult a = softmax_scan(in.s, in.v, in.lse0, in.o0);
  Tensor s2 = in.s.clone(), v2 = in.v.clone();
  s2.data<float>()[250] += 5, v2.data<float>()[250 * 3 + 1] -= 3;
  const SoftmaxScanResult b = softmax_scan(s2, v2, in.lse0, in.o0);
  EXPECT_TRUE(bitwise_equal(a.out.narrow(2, 0, 250), b.out.narrow(2, 0, 250)));
  EXPECT_FALSE(bitwise_equal(a.out.narrow(2, 250, 1), b.out.narrow(2, 250, 1)));
}

// Pieces carrying (lse, out) as the state, and the one-step form, equal the whole sequence.
TEST(SoftmaxScan, PiecesAndStepsEqualTheWhole) {
  for (Backend backend : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(backend);
    const Inputs in = inputs(2, 3, 200, 4, DType::f64, 110);
    const SoftmaxScanResult whole = softmax_scan(in.s, in.v, in.lse0, in.o0);
    Tensor lse = in.lse0, o = in.o0;
    std::vector<Tensor> outs;
    int64_t t = 0;
    for (int64_t len : {1, 63, 70, 1, 65}) {
      const SoftmaxScanResult r =
          softmax_scan(in.s.narrow(2, t, len), in.v.narrow(2, t, len), lse, o);
      outs.push_back(r.out);
      lse = r.lse.select(2, len - 1), o = r.out.select(2, len - 1);
      t += len;
    }
    EXPECT_TRUE(all_close(concat(outs, 2), whole.out)) << backend_name(backend);
    EXPECT_TRUE(all_close(lse, whole.lse.select(2, 199))) << backend_name(backend);
  }
}

// A reset at (b, t) equals a separate sequence starting at t from a fresh state; the other
// streams are untouched; gradients do not cross the reset.
TEST(SoftmaxScan, ResetsEqualSeparateSequences) {
  for (Backend backend : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(backend);
    const Inputs in = inputs(2, 2, 150, 3, DType::f64, 120);
    Tensor resets = Tensor::zeros({2, 150}, DType::f64);
    resets.data<double>()[0 * 150 + 90] = 1;  // stream 0 restarts at 90
    resets.data<double>()[1 * 150 + 0] = 1;   // stream 1 drops its carried state
    const SoftmaxScanResult r = softmax_scan(in.s, in.v, in.lse0, in.o0, resets);
    const SoftmaxScanResult before = softmax_scan(in.s, in.v, in.lse0, in.o0);
    const SoftmaxScanResult fresh = softmax_scan(in.s, in.v);
    const SoftmaxScanResult after = softmax_scan(in.s.narrow(2, 90, 60), in.v.narrow(2, 90, 60));
    const std::string what = backend_name(backend);
    EXPECT_TRUE(
        all_close(r.out.select(0, 0).narrow(1, 0, 90), before.out.select(0, 0).narrow(1, 0, 90)))
        << what;
    EXPECT_TRUE(all_close(r.out.select(0, 0).narrow(1, 90, 60), after.out.select(0, 0))) << what;
    EXPECT_TRUE(all_close(r.out.select(0, 1), fresh.out.select(0, 1))) << what;
    Tensor sl = in.s.clone().set_requires_grad(true), l0 = in.lse0.clone().set_requires_grad(true);
    sum(softmax_scan(sl, in.v, l0, in.o0, resets).out.select(0, 0).narrow(1, 90, 60)).backward();
    EXPECT_EQ(max(abs(sl.grad().select(0, 0).narrow(1, 0, 90))).item<double>(), 0.0) << what;
    EXPECT_EQ(max(abs(l0.grad())).item<double>(), 0.0) << what;
  }
}

TEST(SoftmaxScan, ThreadInvariant) {
  const Inputs in = inputs(1, 3, 1000, 8, DType::f32, 130);  // chunked: 3 sequences
  expect_thread_invariant(
      [&] {
        Tensor s = in.s.clone().set_requires_grad(true), v = in.v.clone().set_requires_grad(true);
        const SoftmaxScanResult r = softmax_scan(s, v, in.lse0, in.o0);
        add(sum(mul(r.out, r.out)), sum(r.lse)).backward();
        return std::vector<Tensor>{r.out, r.lse, s.grad(), v.grad()};
      },
      "softmax_scan");
}

TEST(SoftmaxScan, BadInput) {
  const Inputs in = inputs(2, 3, 5, 4, DType::f32, 140);
  expect_error([&] { softmax_scan(in.s.narrow(2, 0, 4), in.v); }, {"softmax_scan", "scores"});
  expect_error([&] { softmax_scan(in.s, in.v.select(3, 0)); }, {"softmax_scan", "values"});
  expect_error([&] { softmax_scan(in.s.to(DType::f64), in.v); }, {"softmax_scan", "dtypes"});
  expect_error([&] { softmax_scan(in.s, in.v, in.lse0.narrow(1, 0, 2), in.o0); },
               {"softmax_scan", "lse0"});
  expect_error([&] { softmax_scan(in.s, in.v, Tensor(), in.o0); }, {"softmax_scan", "o0"});
  expect_error(
      [&] {
        softmax_scan(in.s, in.v, in.lse0, in.o0, Tensor::zeros({2, 4}));
      },
      {"softmax_scan", "resets"});
  expect_error([&] { softmax_scan(in.s.narrow(2, 0, 0), in.v.narrow(2, 0, 0)); },
               {"softmax_scan", "T >= 1"});
}
