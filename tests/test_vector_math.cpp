// The cpu backend's vectorised transcendental kernels (vec_math: libmvec, AVX2 and AVX-512) against
// the ref backend (libm), on every ISA path this CPU can run (AVX-512 where present, and AVX2
// forced in-process): each op's forward and backward over bands of the input range that matter
// (exp near overflow and underflow, tanh / erf / sigmoid saturation, tiny and denormal inputs),
// special values (+-inf, NaN, +-0, denormals), every tail length around the vector widths,
// non-contiguous inputs, the softmax family and cross-entropy, and thread-count invariance.
// At the end it prints the worst scaled error seen per op (the all_close metric).
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/vec_math.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using rill::cpu::SimdLevel;
using rill::cpu::SimdLevelOverride;

namespace {

// The ISA paths to test here: AVX-512 only where the CPU has it; AVX2 always.
std::vector<SimdLevel> isas() {
  std::vector<SimdLevel> v;
  if (cpu::simd_level_supported(SimdLevel::avx512)) v.push_back(SimdLevel::avx512);
  v.push_back(SimdLevel::avx2);
  return v;
}

// Worst scaled error per op name (forward and gradient), for the summary printed at exit.
std::map<std::string, double>& worst_errors() {
  static std::map<std::string, double> m;
  return m;
}

// The all_close metric: max |a - e| / max(|e|, rms(e)) over elements that are not both the same
// infinity or both NaN.
double scaled_error(const Tensor& actual, const Tensor& expected) {
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double ss = 0;
  for (double v : e)
    if (std::isfinite(v)) ss += v * v;
  const double rms = e.empty() ? 0 : std::sqrt(ss / e.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if ((std::isnan(a[i]) && std::isnan(e[i])) || (std::isinf(a[i]) && a[i] == e[i])) continue;
    double scale = std::max(std::abs(e[i]), rms);
    if (scale == 0) scale = 1;
    worst = std::max(worst, std::abs(a[i] - e[i]) / scale);
  }
  return worst;
}

void record(const std::string& op, DType dt, const Tensor& actual, const Tensor& expected) {
  double& w = worst_errors()[fmt::format("{} {}", op, dtype_name(dt))];
  w = std::max(w, scaled_error(actual, expected));
}

class SummaryPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    if (worst_errors().empty()) return;
    std::printf("worst scaled error vs ref (tolerance f32 %g, f64 %g):\n", tolerance(DType::f32),
                tolerance(DType::f64));
    for (const auto& [op, err] : worst_errors()) std::printf("  %-28s %.3g\n", op.c_str(), err);
  }
};
const auto* const g_summary = ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

// y = fn(x) and dx = d sum(y * w) / dx (w fixed, random, never zero) under one backend.
std::vector<Tensor> value_and_grad(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x,
                                   Backend b) {
  BackendGuard g(b);
  Tensor leaf = x.detach();
  leaf.set_requires_grad(true);
  Tensor y = fn(leaf);
  sum(mul(y, random(y.shape(), y.dtype(), 4242))).backward();
  return {y.detach(), leaf.grad()};
}

enum class Grad { checked, not_checked };

// For inputs with NaN or infinities fed in on purpose: NaN exactly where ref has NaN, the same
// infinities, and the finite elements within the tolerance on the scale of the finite ones
// (all_close would judge each element on its own magnitude once a NaN makes the rms NaN, which
// fails by design near a root of the result, e.g. GELU's derivative at x = -0.75).
::testing::AssertionResult close_with_specials(const Tensor& actual, const Tensor& expected) {
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    const bool same = std::isnan(e[i]) ? std::isnan(a[i])
                                       : (std::isinf(e[i]) ? a[i] == e[i] : std::isfinite(a[i]));
    if (!same)
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << e[i];
  }
  const double err = scaled_error(actual, expected);
  if (err <= tolerance(expected.dtype())) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "scaled error " << err << " over the finite elements";
}

// Forward and gradient under cpu (the active ISA) against ref.
void expect_matches_ref(const std::string& op, const std::function<Tensor(const Tensor&)>& fn,
                        const Tensor& x, const std::string& what, NaN nan = NaN::fails,
                        Grad grad = Grad::checked) {
  std::vector<Tensor> ref = value_and_grad(fn, x, Backend::ref);
  std::vector<Tensor> cpu = value_and_grad(fn, x, Backend::cpu);
  auto close = [&](const Tensor& a, const Tensor& e) {
    return nan == NaN::allowed ? close_with_specials(a, e) : all_close(a, e);
  };
  EXPECT_TRUE(close(cpu[0], ref[0])) << what << ", forward";
  record(op, x.dtype(), cpu[0], ref[0]);
  if (grad == Grad::not_checked) return;
  EXPECT_TRUE(close(cpu[1], ref[1])) << what << ", gradient";
  record(op + " grad", x.dtype(), cpu[1], ref[1]);
}

struct Band {
  double lo, hi;
};

struct OpCase {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
  std::vector<Band> f32, f64;  // input bands, each checked on its own scale
};

// The bands reach the limits of each dtype: exp near its overflow (88.72 / 709.78) and into the
// denormal results below -87.3 / -708.4, saturation of tanh, sigmoid, erf, tiny arguments where
// the functions are near-linear (relative accuracy of small results), denormal inputs to log.
std::vector<OpCase> op_cases() {
  return {
      {"exp",
       [](const Tensor& x) { return exp(x); },
       {{-5, 5}, {-87.3, -70}, {-103, -87.4}, {70, 88.72}, {88.8, 120}, {-1e-6, 1e-6}},
       {{-5, 5}, {-708, -690}, {-744, -708.5}, {690, 709.78}, {710, 1000}, {-1e-12, 1e-12}}},
      {"log",
       [](const Tensor& x) { return log(x); },
       {{1e-3, 10}, {0.5, 2}, {1e-37, 1e-30}, {1e-45, 1e-38}, {1e30, 3e38}},
       {{1e-3, 10}, {0.5, 2}, {1e-307, 1e-300}, {5e-324, 2e-308}, {1e300, 1.7e308}}},
      {"tanh",
       [](const Tensor& x) { return tanh(x); },
       {{-3, 3}, {-1e-3, 1e-3}, {3, 12}, {-12, -3}, {-1e4, 1e4}},
       {{-3, 3}, {-1e-6, 1e-6}, {3, 25}, {-25, -3}, {-1e4, 1e4}}},
      {"sigmoid",
       [](const Tensor& x) { return sigmoid(x); },
       {{-6, 6}, {-100, 100}, {-100, -20}, {20, 100}},
       {{-6, 6}, {-800, 800}, {-740, -40}, {40, 800}}},
      {"silu",
       [](const Tensor& x) { return silu(x); },
       {{-6, 6}, {-100, 100}, {-100, -20}, {-1e-3, 1e-3}},
       {{-6, 6}, {-800, 800}, {-700, -40}, {-1e-6, 1e-6}}},
      {"gelu_erf",
       [](const Tensor& x) { return gelu(x); },
       {{-4, 4}, {-13, -4}, {4, 20}, {-1e-3, 1e-3}, {-1e3, 1e3}},
       {{-4, 4}, {-37, -4}, {4, 40}, {-1e-6, 1e-6}, {-1e3, 1e3}}},
      {"gelu_tanh",
       [](const Tensor& x) { return gelu(x, GeluApprox::tanh); },
       {{-4, 4}, {-9, -4}, {4, 20}, {-1e-3, 1e-3}, {-1e3, 1e3}},
       {{-4, 4}, {-20, -4}, {4, 40}, {-1e-6, 1e-6}, {-1e3, 1e3}}},
      {"elu",
       [](const Tensor& x) { return elu(x, 0.7); },
       {{-3, 3}, {-1e-3, 1e-3}, {-100, -10}},
       {{-3, 3}, {-1e-6, 1e-6}, {-800, -10}}},
      {"softplus",
       [](const Tensor& x) { return softplus(x, 2.0, 5.0); },
       {{-4, 4}, {-50, -5}, {1, 10}},
       {{-4, 4}, {-300, -5}, {1, 10}}},
      {"softplus(1,20)",
       [](const Tensor& x) { return softplus(x); },
       {{-100, 100}, {-90, -20}, {10, 30}},
       {{-800, 800}, {-700, -20}, {10, 30}}},
  };
}

// [3, 41]: 123 elements, a tail for every vector width (4, 8, 16), and strided views of it.
const Shape kBandShape = {3, 41};

}  // namespace

TEST(VectorMath, UnaryBandsMatchRef) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    for (const OpCase& c : op_cases())
      for (DType dt : {DType::f32, DType::f64}) {
        const auto& bands = dt == DType::f32 ? c.f32 : c.f64;
        uint64_t seed = 100;
        for (const Band& b : bands)
          for (bool strided : {false, true}) {
            Tensor x = strided ? random_uniform_strided(kBandShape, dt, ++seed, b.lo, b.hi)
                               : random_uniform(kBandShape, dt, ++seed, b.lo, b.hi);
            expect_matches_ref(c.name, c.fn, x,
                               fmt::format("{} {} {} [{}, {}]{}", c.name, cpu::simd_level_name(isa),
                                           dtype_name(dt), b.lo, b.hi, strided ? " strided" : ""));
          }
      }
  }
}

// Inputs the kernels must not get wrong: NaN and +-inf propagate as in libm, +-0, denormals of
// both signs, the largest and smallest normals, the exp overflow / underflow boundaries. Each
// value fills a tensor of its own (19 elements: full vectors and a tail, and the value is its
// own scale, so the error is relative), and all of them also sit among random values.
TEST(VectorMath, UnarySpecialValues) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    for (DType dt : {DType::f32, DType::f64}) {
      const bool f32 = dt == DType::f32;
      const double inf = std::numeric_limits<double>::infinity();
      const double denorm = f32 ? 1e-40 : 1e-310;
      const double maxv =
          f32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
      const double minv =
          f32 ? std::numeric_limits<float>::min() : std::numeric_limits<double>::min();
      const double big = f32 ? 88.7 : 709.7, small = f32 ? -103.9 : -745.0;
      // 2.5 and 20: softplus's thresholds (beta x == threshold exactly) in op_cases().
      const std::vector<double> specials = {NAN,    inf,   -inf, 0.0,   -0.0,   denorm, -denorm,
                                            maxv,   -maxv, minv, -minv, big,    -big,   small,
                                            -small, 1.0,   -1.0, 100.0, -100.0, 2.5,    20.0};
      for (const OpCase& c : op_cases())
        for (double sv : specials)
          expect_matches_ref(
              c.name, c.fn, Tensor::full({19}, sv, dt),
              fmt::format("{} {} {} x = {}", c.name, cpu::simd_level_name(isa), dtype_name(dt), sv),
              NaN::allowed);
      // All of them (but +-max, whose results would set the scale) among random values, at the
      // start, in the middle and in the last elements (the tail of every width): they must keep
      // their NaN / inf pattern in any lane and leave their neighbours alone.
      Tensor base = random({3, 29}, dt, 77);
      std::vector<double> v = base.to_vector<double>();
      size_t slot = 0;
      for (double sv : specials)
        if (std::abs(sv) != maxv) v[(slot++ * 5) % v.size()] = sv;
      for (size_t k = 0; k < 6; ++k) v[v.size() - 1 - k] = specials[k];
      Tensor x = Tensor::from_vector(v, base.shape()).to(dt);
      for (const OpCase& c : op_cases())
        expect_matches_ref(c.name, c.fn, x,
                           fmt::format("{} {} {} mixed specials", c.name, cpu::simd_level_name(isa),
                                       dtype_name(dt)),
                           NaN::allowed);
    }
  }
}

// Every length from 1 to past two AVX-512 vectors (both unrolled and single-vector loops and every
// tail), contiguous and as a stride-2 view.
TEST(VectorMath, TailLengths) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    for (DType dt : {DType::f32, DType::f64})
      for (int64_t n = 1; n <= 35; ++n)
        for (const OpCase& c : op_cases()) {
          const double lo = c.name == std::string("log") ? 0.01 : -5;
          Tensor x = random_uniform({n}, dt, 300 + n, lo, 5);
          Tensor xs = random_uniform_strided({n}, dt, 400 + n, lo, 5);
          ASSERT_TRUE(n == 1 || !xs.is_contiguous());
          const std::string what =
              fmt::format("{} {} {} n {}", c.name, cpu::simd_level_name(isa), dtype_name(dt), n);
          expect_matches_ref(c.name, c.fn, x, what);
          expect_matches_ref(c.name, c.fn, xs, what + " strided");
        }
  }
}

// Large enough to run on several threads (over 32768 elements, several 16384-element chunks);
// includes broadcast-like views (a transposed one).
TEST(VectorMath, LargeAndTransposed) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    for (DType dt : {DType::f32, DType::f64})
      for (const OpCase& c : op_cases()) {
        const std::string what =
            fmt::format("{} {} {}", c.name, cpu::simd_level_name(isa), dtype_name(dt));
        const double lo = c.name == std::string("log") ? 0.01 : -6;
        Tensor x = random_uniform({40037}, dt, 5, lo, 6);
        expect_matches_ref(c.name, c.fn, x, what + " [40037]");
        Tensor t = random_uniform({97, 413}, dt, 6, lo, 6).transpose(0, 1);
        expect_matches_ref(c.name, c.fn, t, what + " transposed [413, 97]");
      }
  }
}

// The split of work never depends on the thread count, on either ISA.
TEST(VectorMath, ThreadCountInvariant) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    Tensor x = random({70001}, DType::f32, 12);
    Tensor logits = mul(random({200, 333}, DType::f32, 13), 4.0);
    for (const OpCase& c : op_cases()) {
      if (c.name == std::string("log")) continue;
      expect_thread_invariant(
          [&] {
            Tensor leaf = x.detach();
            leaf.set_requires_grad(true);
            Tensor y = c.fn(leaf);
            sum(mul(y, random(y.shape(), y.dtype(), 3))).backward();
            return std::vector<Tensor>{y.detach(), leaf.grad()};
          },
          fmt::format("{} {}", c.name, cpu::simd_level_name(isa)));
    }
    Tensor target = Tensor::randint({200}, 0, 333, 14);
    expect_thread_invariant(
        [&] {
          Tensor leaf = logits.detach();
          leaf.set_requires_grad(true);
          Tensor a = softmax(leaf), b = log_softmax(leaf), l = cross_entropy(leaf, target);
          add(add(sum(mul(a, logits)), sum(mul(b, logits))), l).backward();
          return std::vector<Tensor>{a.detach(), b.detach(), l.detach(), leaf.grad()};
        },
        fmt::format("softmax family {}", cpu::simd_level_name(isa)));
  }
}

// The softmax family on both ISAs: row widths around every vector width, logits of small and
// very large spread (probabilities that underflow), -inf (masked) entries, f32 and f64.
// softmax's gradient y (g - sum(g y)) cancels on a nearly one-hot row, where f32 has no correct
// digit to compare: at spread 30 the f32 ref is 3e-6 of the rms away from the f64 result, at
// spread 500 135 times the rms (the cpu kernel before vec_math was no closer). So in f32 it is
// compared at spread 1 only; f64 checks it at every spread.
TEST(VectorMath, SoftmaxFamilyMatchesRef) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    for (DType dt : {DType::f32, DType::f64})
      for (int64_t width : {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000})
        for (double spread : {1.0, 30.0, 500.0}) {
          Tensor x = mul(random({5, width}, dt, 40 + width), spread);
          const std::string what = fmt::format(
              "{} {} width {} spread {}", cpu::simd_level_name(isa), dtype_name(dt), width, spread);
          const Grad softmax_grad =
              dt == DType::f32 && spread > 1 ? Grad::not_checked : Grad::checked;
          expect_matches_ref(
              "softmax", [](const Tensor& t) { return softmax(t); }, x, "softmax " + what,
              NaN::fails, softmax_grad);
          expect_matches_ref(
              "log_softmax", [](const Tensor& t) { return log_softmax(t); }, x,
              "log_softmax " + what);
          Tensor target = Tensor::randint({5}, 0, width, 50 + width);
          expect_matches_ref(
              "cross_entropy", [&](const Tensor& t) { return cross_entropy(t, target); }, x,
              "cross_entropy " + what);
          if (width > 2) {  // masked entries: exact zeros, on a strided (transposed) input too
            Tensor m = x.clone();
            m.slice(1, 1, width, 2).fill_(-INFINITY);
            expect_matches_ref(
                "softmax", [](const Tensor& t) { return softmax(t); }, m, "masked softmax " + what,
                NaN::fails, softmax_grad);
            expect_matches_ref(
                "log_softmax", [](const Tensor& t) { return log_softmax(t, 0); }, m.transpose(0, 1),
                "masked log_softmax, dim 0 of a view " + what);
          }
        }
  }
}

// A NaN logit poisons its row only, and a fully masked row is NaN, as in ref.
TEST(VectorMath, SoftmaxNonFinite) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    for (DType dt : {DType::f32, DType::f64}) {
      Tensor x = random({4, 37}, dt, 61);
      x.select(0, 1).select(0, 36).fill_(NAN);
      x.select(0, 2).fill_(-INFINITY);
      x.select(0, 3).select(0, 5).fill_(INFINITY);
      for (auto fn : {&softmax, &log_softmax})
        expect_matches_ref(
            fn == &softmax ? "softmax" : "log_softmax", [&](const Tensor& t) { return fn(t, -1); },
            x, fmt::format("non-finite {} {}", cpu::simd_level_name(isa), dtype_name(dt)),
            NaN::allowed);
    }
  }
}

// max and logsumexp reductions share the row kernels: odd lengths, long rows (several 4096
// blocks), large spreads, and a row with -inf entries.
TEST(VectorMath, MaxAndLogsumexpMatchRef) {
  for (SimdLevel isa : isas()) {
    SimdLevelOverride o(isa);
    for (DType dt : {DType::f32, DType::f64})
      for (int64_t width : {1, 5, 17, 4099, 9000})
        for (double spread : {1.0, 200.0}) {
          Tensor x = mul(random({3, width}, dt, 70 + width), spread);
          if (width > 4) x.select(0, 1).slice(0, 0, width, 3).fill_(-INFINITY);
          const std::string what = fmt::format(
              "{} {} width {} spread {}", cpu::simd_level_name(isa), dtype_name(dt), width, spread);
          expect_matches_ref(
              "max", [](const Tensor& t) { return max(t, {1}); }, x, "max " + what);
          expect_matches_ref(
              "logsumexp", [](const Tensor& t) { return logsumexp(t, {1}); }, x,
              "logsumexp " + what);
        }
  }
}

TEST(VectorMath, SimdLevelOverrideRestores) {
  const SimdLevel before = cpu::simd_level();
  {
    SimdLevelOverride o(SimdLevel::avx2);
    EXPECT_EQ(cpu::simd_level(), SimdLevel::avx2);
  }
  EXPECT_EQ(cpu::simd_level(), before);
  EXPECT_TRUE(cpu::simd_level_supported(SimdLevel::avx2));
}
