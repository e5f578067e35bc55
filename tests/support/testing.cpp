// The shared test utilities (see testing.h): tolerance table, random inputs, comparisons,
// backend agreement, thread invariance, gradient checks.
#include "tests/support/testing.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "rill/autograd/grad_mode.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/op_util.h"
#include "rill/ops/reduce.h"

namespace rill::testing {

// Every test binary links this file: outputs are NaN-filled before kernels run, always.
namespace {
const bool g_fill_on = [] {
  set_debug_fill_outputs(true);
  return true;
}();
}  // namespace

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::f64:
      return 1e-10;
    case DType::f32:
      return 1e-5;
    default:
      return 0;
  }
}

Tensor random(const Shape& shape, DType dtype, uint64_t seed) {
  return Tensor::randn(shape, seed, dtype);
}

Tensor random_uniform(const Shape& shape, DType dtype, uint64_t seed, double lo, double hi) {
  return Tensor::uniform(shape, lo, hi, seed, dtype);
}

namespace {

// A non-contiguous view of `shape` into a larger buffer made by `make(big_shape)`.
Tensor strided_view(const Shape& shape, const std::function<Tensor(const Shape&)>& make) {
  if (shape.size() < 2) {
    Shape big = shape.empty() ? Shape{2} : Shape{shape[0] * 2 + 1};
    Tensor b = make(big);
    return shape.empty() ? b.select(0, 1) : b.slice(0, 1, 1 + 2 * shape[0], 2);
  }
  // Allocate with the last two dims swapped and padded, then slice and transpose back.
  Shape big = shape;
  std::swap(big[big.size() - 1], big[big.size() - 2]);
  big.back() += 1;
  const int64_t r = static_cast<int64_t>(shape.size());
  return make(big).slice(r - 1, 0, shape[r - 2]).transpose(r - 1, r - 2);
}

}  // namespace

Tensor random_strided(const Shape& shape, DType dtype, uint64_t seed) {
  return strided_view(shape, [&](const Shape& s) { return Tensor::randn(s, seed, dtype); });
}

Tensor random_uniform_strided(const Shape& shape, DType dtype, uint64_t seed, double lo,
                              double hi) {
  return strided_view(shape,
                      [&](const Shape& s) { return Tensor::uniform(s, lo, hi, seed, dtype); });
}

::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double tol,
                                     NaN nan) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure()
           << "undefined tensor (actual " << actual.str() << ", expected " << expected.str() << ")";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << "shape " << shape_str(actual.shape()) << " vs " << shape_str(expected.shape());
  if (actual.dtype() != expected.dtype())
    return ::testing::AssertionFailure()
           << "dtype " << dtype_name(actual.dtype()) << " vs " << dtype_name(expected.dtype());
  if (tol < 0) tol = tolerance(expected.dtype());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  double ss = 0;
  for (double v : e) ss += v * v;
  const double rms = e.empty() ? 0 : std::sqrt(ss / e.size());
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(e[i])) {
      if (nan == NaN::allowed && std::isnan(a[i]) && std::isnan(e[i])) continue;
      return ::testing::AssertionFailure()
             << "element " << i << ": " << a[i] << " vs " << e[i] << " (NaN "
             << (nan == NaN::allowed ? "on one side only" : "where none is expected") << ", shape "
             << shape_str(expected.shape()) << ")";
    }
    const bool same_inf = std::isinf(a[i]) && a[i] == e[i];
    if (same_inf) continue;
    double scale = std::max(std::abs(e[i]), rms);
    if (scale == 0) scale = 1;
    double err =
        std::isfinite(a[i]) && std::isfinite(e[i]) ? std::abs(a[i] - e[i]) / scale : INFINITY;
    if (!(err <= worst)) worst = err, worst_i = i;
  }
  if (worst <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst_i << ": " << a[worst_i] << " vs " << e[worst_i] << " (scaled error "
         << worst << " > " << tol << ", shape " << shape_str(expected.shape()) << ")";
}

::testing::AssertionResult bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype())
    return ::testing::AssertionFailure() << a.str() << " vs " << b.str();
  Tensor ac = a.contiguous(), bc = b.contiguous();
  if (std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) != 0)
    return ::testing::AssertionFailure() << "bytes differ";
  return ::testing::AssertionSuccess();
}

void expect_backends_agree(const std::function<std::vector<Tensor>()>& fn, const std::string& what,
                           double tol, NaN nan) {
  std::vector<Tensor> ref_out, cpu_out;
  {
    BackendGuard g(Backend::ref);
    ref_out = fn();
  }
  {
    BackendGuard g(Backend::cpu);
    cpu_out = fn();
  }
  ASSERT_EQ(ref_out.size(), cpu_out.size()) << what;
  for (size_t i = 0; i < ref_out.size(); ++i)
    EXPECT_TRUE(all_close(cpu_out[i], ref_out[i], tol, nan)) << what << ", output " << i;
}

namespace {

// Leaves that require grad, copied from `inputs` (floating ones only).
std::vector<Tensor> fresh_leaves(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach();
    if (is_floating(t.dtype())) c.set_requires_grad(true);
    out.push_back(c);
  }
  return out;
}

Tensor weighted_loss(const Tensor& y, uint64_t seed) {
  Tensor w = Tensor::randn(y.shape(), seed, y.dtype());
  return sum(mul(y, w));
}

}  // namespace

void expect_backends_agree_with_grad(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                     const std::vector<Tensor>& inputs, const std::string& what,
                                     double tol) {
  std::vector<Tensor> outs[2];
  const Backend backends[2] = {Backend::ref, Backend::cpu};
  for (int b = 0; b < 2; ++b) {
    BackendGuard g(backends[b]);
    std::vector<Tensor> leaves = fresh_leaves(inputs);
    Tensor y = fn(leaves);
    outs[b].push_back(y.detach());
    weighted_loss(y, 777).backward();
    for (const Tensor& l : leaves)
      if (l.requires_grad()) outs[b].push_back(l.grad());
  }
  ASSERT_EQ(outs[0].size(), outs[1].size());
  for (size_t i = 0; i < outs[0].size(); ++i)
    EXPECT_TRUE(all_close(outs[1][i], outs[0][i], tol))
        << what << (i == 0 ? ", output" : ", gradient of a floating input #")
        << (i == 0 ? 0 : i - 1);
}

void expect_thread_invariant(const std::function<std::vector<Tensor>()>& fn,
                             const std::string& what) {
  BackendGuard g(Backend::cpu);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<Tensor> one = fn();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    std::vector<Tensor> many = fn();
    EXPECT_EQ(one.size(), many.size()) << what;
    for (size_t i = 0; i < one.size() && i < many.size(); ++i)
      EXPECT_TRUE(bitwise_equal(many[i], one[i]))
          << what << ", result " << i << ", " << threads << " threads";
  }
  omp_set_num_threads(saved);
}

void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const std::string& what, double tol) {
  for (Backend b : {Backend::ref, Backend::cpu})
    gradcheck(fn, inputs, what + " (" + backend_name(b) + ")", tol, b);
}

void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
               const std::vector<Tensor>& inputs, const std::string& what, double tol,
               Backend backend) {
  BackendGuard g(backend);
  std::vector<Tensor> copies;
  for (const Tensor& t : inputs) copies.push_back(t.clone());  // contiguous, and ours to perturb
  std::vector<Tensor> leaves = fresh_leaves(copies);
  for (const Tensor& l : leaves) {
    if (is_floating(l.dtype())) {
      ASSERT_EQ(l.dtype(), DType::f64) << what << ": gradcheck needs f64 inputs";
    }
  }
  Tensor y = fn(leaves);
  Tensor w = Tensor::randn(y.shape(), 4242, DType::f64);
  sum(mul(y, w)).backward();

  NoGradGuard no_grad;
  auto loss_at = [&]() {
    std::vector<Tensor> plain;
    for (const Tensor& l : leaves) plain.push_back(l.detach());
    return sum(mul(fn(plain), w)).item<double>();
  };
  for (size_t k = 0; k < leaves.size(); ++k) {
    if (!is_floating(leaves[k].dtype())) continue;
    Tensor analytic = leaves[k].grad();
    ASSERT_TRUE(analytic.defined()) << what << ": input " << k << " got no gradient";
    std::vector<double> an = analytic.to_vector<double>();
    double* p = leaves[k].data<double>();  // leaves are contiguous copies of fresh inputs
    ASSERT_TRUE(leaves[k].is_contiguous());
    double scale = 0;
    for (double v : an) scale = std::max(scale, std::abs(v));
    scale = std::max(scale, 1e-3);
    for (int64_t i = 0; i < leaves[k].numel(); ++i) {
      const double old = p[i];
      p[i] = old + kGradcheckEps;
      double up = loss_at();
      p[i] = old - kGradcheckEps;
      double down = loss_at();
      p[i] = old;
      double numeric = (up - down) / (2 * kGradcheckEps);
      EXPECT_LE(std::abs(numeric - an[i]), tol * std::max(std::abs(numeric), scale))
          << what << ": input " << k << " element " << i << " analytic " << an[i] << " numeric "
          << numeric;
    }
  }
}

void gradcheck_leaves(const std::function<Tensor()>& fn, const std::vector<Tensor>& wrt,
                      const std::string& what, Backend backend, double tol) {
  BackendGuard g(backend);
  for (size_t k = 0; k < wrt.size(); ++k) {
    ASSERT_TRUE(wrt[k].dtype() == DType::f64 && wrt[k].is_contiguous() && wrt[k].is_leaf() &&
                wrt[k].requires_grad())
        << what << ": tensor " << k << " must be an f64 contiguous leaf that requires grad";
    Tensor(wrt[k]).zero_grad();
  }
  Tensor y = fn();
  Tensor w = Tensor::randn(y.shape(), 4243, DType::f64);
  sum(mul(y, w)).backward();
  NoGradGuard no_grad;
  auto loss_at = [&]() { return sum(mul(fn(), w)).item<double>(); };
  for (size_t k = 0; k < wrt.size(); ++k) {
    Tensor analytic = wrt[k].grad();
    ASSERT_TRUE(analytic.defined()) << what << ": tensor " << k << " got no gradient";
    std::vector<double> an = analytic.to_vector<double>();
    double scale = 1e-3;
    for (double v : an) scale = std::max(scale, std::abs(v));
    double* p = wrt[k].data<double>();
    for (int64_t i = 0; i < wrt[k].numel(); ++i) {
      const double old = p[i];
      p[i] = old + kGradcheckEps;
      const double up = loss_at();
      p[i] = old - kGradcheckEps;
      const double down = loss_at();
      p[i] = old;
      const double numeric = (up - down) / (2 * kGradcheckEps);
      EXPECT_LE(std::abs(numeric - an[i]), tol * std::max(std::abs(numeric), scale))
          << what << " (" << backend_name(backend) << "): tensor " << k << " element " << i
          << " analytic " << an[i] << " numeric " << numeric;
    }
  }
}

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(msg.find(part), std::string::npos)
          << "message \"" << msg << "\" lacks \"" << part << "\"";
    return;
  }
  ADD_FAILURE() << "expected a rill::Error mentioning " << ::testing::PrintToString(parts);
}

}  // namespace rill::testing
