// Softmax family: cpu against ref (f32 and f64, several shapes, strided inputs, non-last dims),
// agreement with the composite formulas, f64 gradient checks, cross-entropy with ignored
// targets, stability at +-1000, bitwise determinism across thread counts, and the errors.
#include <omp.h>

#include <cmath>

#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

struct Variant {
  const char* name;
  Tensor (*fn)(const Tensor&, int64_t);
};
const Variant kVariants[] = {{"softmax", &softmax}, {"log_softmax", &log_softmax}};

struct DimCase {
  Shape shape;
  int64_t dim;
};
// Last and non-last dims; [300, 130] is large enough for the cpu kernels to go parallel.
const std::vector<DimCase> kDimCases = {{{7}, -1},        {{3, 5}, -1},    {{3, 5}, 0},
                                        {{2, 3, 37}, -1}, {{2, 3, 37}, 1}, {{4, 33, 6}, 0},
                                        {{64, 257}, -1},  {{300, 130}, -1}};

std::string describe(const char* name, DType dt, const Shape& s, int64_t dim, bool strided) {
  return fmt::format("{} {} {} dim {}{}", name, dtype_name(dt), shape_str(s), dim,
                     strided ? " strided" : "");
}

// Class ids in [0, classes) for the leading dims `lead`; every `every`-th one (from the second)
// is set to ignore_index; every == 0 ignores none.
Tensor make_target(const Shape& lead, int64_t classes, DType dt, uint64_t seed, int64_t every,
                   int64_t ignore_index = -100) {
  std::vector<int64_t> v = Tensor::randint(lead, 0, classes, seed).to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); ++i)
    if (every > 0 && static_cast<int64_t>(i) % every == 1) v[i] = ignore_index;
  Tensor t = Tensor::from_vector(v, lead);
  return dt == DType::i64 ? t : t.to(dt);
}

Shape leading(const Shape& s) { return Shape(s.begin(), s.end() - 1); }

// fn's output and the gradient of sum(output * w) with respect to x (w fixed random).
std::vector<Tensor> value_and_grad(const std::function<Tensor(const Tensor&)>& fn,
                                   const Tensor& x) {
  Tensor leaf = x.detach();
  leaf.set_requires_grad(true);
  Tensor y = fn(leaf);
  sum(mul(y, random(y.shape(), y.dtype(), 99))).backward();
  return {y.detach(), leaf.grad()};
}

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

TEST(Softmax, CpuMatchesRef) {
  for (const Variant& v : kVariants)
    for (DType dt : {DType::f32, DType::f64})
      for (const DimCase& c : kDimCases)
        for (bool strided : {false, true}) {
          Tensor x = strided ? random_strided(c.shape, dt, 5) : random(c.shape, dt, 5);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return v.fn(in[0], c.dim); }, {x},
              describe(v.name, dt, c.shape, c.dim, strided));
        }
}

TEST(Softmax, MatchesCompositeFormula) {
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    for (const DimCase& c : kDimCases) {
      Tensor x = random(c.shape, DType::f64, 6);
      Tensor log_p = sub(x, logsumexp(x, {c.dim}, true));
      std::string what = describe(backend_name(b), DType::f64, c.shape, c.dim, false);
      EXPECT_TRUE(all_close(log_softmax(x, c.dim), log_p)) << what;
      EXPECT_TRUE(all_close(softmax(x, c.dim), exp(log_p))) << what;
    }
  }
}

TEST(Softmax, Gradcheck) {
  const std::vector<DimCase> cases = {{{4, 5}, -1}, {{4, 5}, 0}, {{2, 3, 4}, 1}, {{6}, 0}};
  for (const Variant& v : kVariants)
    for (const DimCase& c : cases)
      gradcheck([&](const std::vector<Tensor>& in) { return v.fn(in[0], c.dim); },
                {random(c.shape, DType::f64, 7)},
                describe(v.name, DType::f64, c.shape, c.dim, false));
}

TEST(Softmax, StableAtLargeLogits) {
  for (DType dt : {DType::f32, DType::f64})
    for (double offset : {1000.0, -1000.0})
      for (Backend b : {Backend::ref, Backend::cpu}) {
        BackendGuard g(b);
        // Values within a factor 2 of offset, so x - offset is exact: the same logits, shifted.
        Tensor x = add(mul(random({6, 40}, dt, 8), 3.0), offset);
        Tensor shifted = add(x, -offset);
        for (const Variant& v : kVariants) {
          auto fn = [&](const Tensor& t) { return v.fn(t, -1); };
          std::vector<Tensor> big = value_and_grad(fn, x), small = value_and_grad(fn, shifted);
          std::string what =
              fmt::format("{} {} {} offset {}", v.name, backend_name(b), dtype_name(dt), offset);
          EXPECT_TRUE(all_finite(big[0]) && all_finite(big[1])) << what;
          EXPECT_TRUE(all_close(big[0], small[0])) << what;
          EXPECT_TRUE(all_close(big[1], small[1])) << what;
        }
        // Two logits 1000 apart: the small one's probability underflows to 0, its log does not.
        Tensor pair = Tensor::from_vector(std::vector<double>{offset, offset - 1000}, {2}).to(dt);
        EXPECT_TRUE(all_close(log_softmax(pair),
                              Tensor::from_vector(std::vector<double>{0, -1000}, {2}).to(dt)));
        EXPECT_TRUE(
            all_close(softmax(pair), Tensor::from_vector(std::vector<double>{1, 0}, {2}).to(dt)));
      }
}

// Each probability on its own scale, not the row's: rows [0, -d] for d across the whole range
// where exp(-d) is a normal number, so tiny probabilities are checked to full relative precision.
TEST(Softmax, SmallProbabilitiesAreAccurate) {
  for (DType dt : {DType::f32, DType::f64}) {
    const double d_max = dt == DType::f32 ? 80 : 700;
    const int64_t rows = 4001;
    std::vector<double> v;
    for (int64_t r = 0; r < rows; ++r) v.insert(v.end(), {0.0, -d_max * r / (rows - 1)});
    Tensor x = Tensor::from_vector(v, {rows, 2}).to(dt);
    for (Backend b : {Backend::ref, Backend::cpu}) {
      BackendGuard g(b);
      std::vector<double> p = softmax(x).to_vector<double>();
      std::vector<double> lp = log_softmax(x).to_vector<double>();
      std::vector<double> xs = x.to_vector<double>();  // the logits after rounding to dt
      for (int64_t r = 0; r < rows; ++r) {
        const long double e = std::exp(static_cast<long double>(xs[2 * r + 1]));
        const double expected = static_cast<double>(e / (1 + e));
        const double expected_log = static_cast<double>(xs[2 * r + 1] - std::log1p(e));
        ASSERT_LE(std::abs(p[2 * r + 1] - expected), tolerance(dt) * expected)
            << backend_name(b) << " " << dtype_name(dt) << " d " << -xs[2 * r + 1];
        ASSERT_LE(std::abs(lp[2 * r + 1] - expected_log),
                  tolerance(dt) * std::max(1.0, std::abs(expected_log)))
            << backend_name(b) << " " << dtype_name(dt) << " d " << -xs[2 * r + 1];
      }
    }
  }
}

// -inf logits (masked positions) get probability 0 and gradient 0; a NaN poisons its row only.
TEST(Softmax, NonFiniteLogits) {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = random({5, 9}, dt, 25);
    x.select(0, 1).slice(0, 2, 9, 3).fill_(-INFINITY);
    x.select(0, 3).select(0, 4).fill_(NAN);
    for (const Variant& v : kVariants) {
      std::vector<Tensor> out[2];
      const Backend backends[2] = {Backend::ref, Backend::cpu};
      for (int b = 0; b < 2; ++b) {
        BackendGuard g(backends[b]);
        out[b] = value_and_grad([&](const Tensor& t) { return v.fn(t, -1); }, x);
      }
      std::string what = fmt::format("{} {}", v.name, dtype_name(dt));
      EXPECT_TRUE(all_close(out[1][0], out[0][0], -1, NaN::allowed)) << what;
      EXPECT_TRUE(all_close(out[1][1], out[0][1], -1, NaN::allowed)) << what;
      // Row 1 over its unmasked entries only, written here in double: what the masked row must
      // equal where it is not masked.
      std::vector<double> xr = x.select(0, 1).contiguous().to_vector<double>();
      double top = -INFINITY, total = 0;
      for (int64_t c = 0; c < 9; ++c)
        if (std::isfinite(xr[c])) top = std::max(top, xr[c]);
      for (int64_t c = 0; c < 9; ++c)
        if (std::isfinite(xr[c])) total += std::exp(xr[c] - top);
      for (int b = 0; b < 2; ++b) {
        std::vector<double> y = out[b][0].to_vector<double>(), gx = out[b][1].to_vector<double>();
        for (int64_t c = 0; c < 9; ++c) {
          const bool masked = c >= 2 && (c - 2) % 3 == 0;
          const double log_p = xr[c] - top - std::log(total);
          if (masked) {
            EXPECT_EQ(y[9 + c], v.fn == &softmax ? 0.0 : -INFINITY) << what;
          } else {
            const double want = v.fn == &softmax ? std::exp(log_p) : log_p;
            EXPECT_NEAR(y[9 + c], want, tolerance(dt) * std::max(1.0, std::abs(want)))
                << what << " column " << c;
          }
          EXPECT_TRUE(std::isfinite(gx[9 + c])) << what << " column " << c;
          EXPECT_TRUE(std::isnan(y[27 + c])) << what << " column " << c;
          EXPECT_TRUE(std::isfinite(y[c]) && std::isfinite(y[36 + c])) << what;
        }
      }
    }
  }
}

TEST(Softmax, ThreadCountInvariant) {
  Tensor x = random({300, 257}, DType::f32, 9);
  for (const Variant& v : kVariants)
    for (int64_t dim : {-1, 0})
      expect_thread_invariant(
          [&] { return value_and_grad([&](const Tensor& t) { return v.fn(t, dim); }, x); },
          fmt::format("{} dim {}", v.name, dim));
}

TEST(Softmax, BadInput) {
  Tensor x = random({4, 3}, DType::f32, 10);
  for (const Variant& v : kVariants) {
    expect_error([&] { v.fn(Tensor::randint({4, 3}, 0, 5, 1), -1); }, {v.name, "[4, 3]", "i64"});
    expect_error([&] { v.fn(x, 2); }, {v.name, "[4, 3]", "dim 2"});
    expect_error([&] { v.fn(x, -3); }, {v.name, "[4, 3]", "dim -3"});
    expect_error([&] { v.fn(Tensor::scalar(1.0), -1); }, {v.name, "scalar"});
  }
}

TEST(CrossEntropy, CpuMatchesRef) {
  const std::vector<Shape> shapes = {{9}, {5, 7}, {2, 3, 11}, {64, 257}, {200, 300}};
  for (DType dt : {DType::f32, DType::f64})
    for (DType tdt : {DType::i32, DType::i64})
      for (const Shape& s : shapes)
        for (bool strided : {false, true}) {
          Tensor x = strided ? random_strided(s, dt, 11) : random(s, dt, 11);
          Tensor t = make_target(leading(s), s.back(), tdt, 12, 3);
          expect_backends_agree_with_grad(
              [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); }, {x, t},
              describe("cross_entropy", dt, s, -1, strided) + " target " + dtype_name(tdt));
        }
}

TEST(CrossEntropy, MatchesCompositeFormula) {
  // ignore_index 2 lies inside [0, C): those rows must be skipped, not scored.
  for (int64_t ignore : {-100, 2})
    for (Backend b : {Backend::ref, Backend::cpu}) {
      BackendGuard g(b);
      const int64_t rows = 12, classes = 7;
      Tensor x = random({rows, classes}, DType::f64, 13);
      Tensor t = make_target({rows}, classes, DType::i64, 14, 4, ignore);
      std::vector<Tensor> out =
          value_and_grad([&](const Tensor& l) { return cross_entropy(l, t, ignore); }, x);
      // Expected: -mean of log p[target] over kept rows; gradient (p - onehot) * dloss / count.
      std::vector<double> lp = log_softmax(x).to_vector<double>();
      std::vector<int64_t> tv = t.to_vector<int64_t>();
      const double dloss = random({}, DType::f64, 99).item<double>();
      double total = 0;
      int64_t count = 0;
      for (int64_t r = 0; r < rows; ++r)
        if (tv[r] != ignore) total -= lp[r * classes + tv[r]], ++count;
      std::vector<double> grad(rows * classes, 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < classes && tv[r] != ignore; ++c)
          grad[r * classes + c] =
              (std::exp(lp[r * classes + c]) - (c == tv[r] ? 1.0 : 0.0)) * dloss / count;
      ASSERT_GT(count, 0);
      ASSERT_LT(count, rows);
      std::string what = fmt::format("{} ignore_index {}", backend_name(b), ignore);
      EXPECT_TRUE(all_close(out[0], Tensor::scalar(total / count, DType::f64))) << what;
      EXPECT_TRUE(all_close(out[1], Tensor::from_vector(grad, {rows, classes}))) << what;
    }
}

TEST(CrossEntropy, AllIgnoredGivesZero) {
  for (Backend b : {Backend::ref, Backend::cpu})
    for (DType dt : {DType::f32, DType::f64}) {
      BackendGuard g(b);
      Tensor x = random({3, 5}, dt, 15);
      Tensor t = Tensor::full({3}, -100, DType::i64);
      std::vector<Tensor> out =
          value_and_grad([&](const Tensor& l) { return cross_entropy(l, t); }, x);
      EXPECT_EQ(out[0].item<double>(), 0.0) << backend_name(b);
      EXPECT_TRUE(bitwise_equal(out[1], Tensor::zeros({3, 5}, dt))) << backend_name(b);
    }
}

TEST(CrossEntropy, Gradcheck) {
  for (const Shape& s : std::vector<Shape>{{4, 5}, {2, 3, 4}, {6}}) {
    Tensor t = make_target(leading(s), s.back(), DType::i64, 16, 3);
    gradcheck([](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
              {random(s, DType::f64, 17), t}, "cross_entropy " + shape_str(s));
  }
}

TEST(CrossEntropy, StableAtLargeLogits) {
  for (DType dt : {DType::f32, DType::f64})
    for (double offset : {1000.0, -1000.0})
      for (Backend b : {Backend::ref, Backend::cpu}) {
        BackendGuard g(b);
        Tensor x = add(mul(random({8, 30}, dt, 18), 3.0), offset);
        Tensor t = make_target({8}, 30, DType::i64, 19, 3);
        auto fn = [&](const Tensor& l) { return cross_entropy(l, t); };
        std::vector<Tensor> big = value_and_grad(fn, x);
        std::vector<Tensor> small = value_and_grad(fn, add(x, -offset));
        std::string what = fmt::format("{} {} offset {}", backend_name(b), dtype_name(dt), offset);
        EXPECT_TRUE(all_finite(big[0]) && all_finite(big[1])) << what;
        EXPECT_TRUE(all_close(big[0], small[0])) << what;
        EXPECT_TRUE(all_close(big[1], small[1])) << what;
      }
}

TEST(CrossEntropy, ThreadCountInvariant) {
  Tensor x = random({400, 257}, DType::f32, 20);
  Tensor t = make_target({400}, 257, DType::i64, 21, 5);
  expect_thread_invariant(
      [&] { return value_and_grad([&](const Tensor& l) { return cross_entropy(l, t); }, x); },
      "cross_entropy");
}

TEST(CrossEntropy, BadInput) {
  Tensor x = random({4, 3}, DType::f32, 22);
  Tensor t = make_target({4}, 3, DType::i64, 23, 0);
  expect_error(
      [&] {
        cross_entropy(Tensor::randint({4, 3}, 0, 3, 1), t);
      },
      {"[cross_entropy]", "[4, 3]", "i64"});
  expect_error([&] { cross_entropy(x, make_target({5}, 3, DType::i64, 23, 0)); },
               {"[cross_entropy]", "[5]", "[4, 3]"});
  expect_error(
      [&] {
        cross_entropy(x, make_target({4, 1}, 3, DType::i64, 23, 0));
      },
      {"[cross_entropy]", "[4, 1]", "[4, 3]"});
  expect_error([&] { cross_entropy(x, random({4}, DType::f32, 24)); },
               {"[cross_entropy]", "f32 [4]", "[4, 3]"});
  expect_error([&] { cross_entropy(x, Tensor()); }, {"[cross_entropy]", "target"});
  expect_error([&] { cross_entropy(Tensor::scalar(1.0), Tensor::scalar(0, DType::i64)); },
               {"[cross_entropy]", "scalar"});
  for (int64_t bad : {3, -1, -100}) {
    std::vector<int64_t> v = {0, 1, bad, 2};
    Tensor tb = Tensor::from_vector(v, {4});
    // -100 is fine with the default ignore_index, and out of range with ignore_index 0.
    const int64_t ignore = bad == -100 ? 0 : -100;
    expect_error([&] { cross_entropy(x, tb, ignore); },
                 {"[cross_entropy]", fmt::format("target {}", bad), "[0, 3)", "[4, 3]"});
  }
}

// Empty tensors (zero rows, a zero inner dim, or C == 0): empty outputs, a loss of 0 and zero
// gradients, never a NaN left unwritten.
TEST(CrossEntropy, EmptyInputs) {
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    for (const Shape& s : std::vector<Shape>{{0, 5}, {2, 0, 5}, {3, 0}}) {
      Tensor x = random(s, DType::f32, 26);
      // With C == 0 every target must be ignored.
      Tensor t = s.back() == 0 ? Tensor::full(leading(s), -100, DType::i64)
                               : Tensor::randint(leading(s), 0, s.back(), 27);
      std::string what = std::string(backend_name(b)) + " " + shape_str(s);
      std::vector<Tensor> ce =
          value_and_grad([&](const Tensor& l) { return cross_entropy(l, t); }, x);
      EXPECT_EQ(ce[0].item<double>(), 0.0) << what;
      EXPECT_TRUE(bitwise_equal(ce[1], Tensor::zeros(s, DType::f32))) << what;
      for (const Variant& v : kVariants)
        for (int64_t dim = 0; dim < static_cast<int64_t>(s.size()); ++dim)
          EXPECT_EQ(value_and_grad([&](const Tensor& l) { return v.fn(l, dim); }, x)[1].shape(), s)
              << what << " " << v.name << " dim " << dim;
    }
  }
}
