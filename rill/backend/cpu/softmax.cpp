// Fast softmax-family kernels. OpenMP spreads rows over threads; within a row every pass is a
// contiguous `omp simd` loop, and a row is always reduced whole by one thread, so the result
// is bitwise the same for any thread count.
#include "rill/backend/cpu/softmax.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace rill::cpu {

namespace {

// Below this many elements a kernel stays on one thread: forking would cost more than it saves.
constexpr int64_t kParallelMin = 32768;

// Constants of exp_nonpos: the clamp (exp(kMin) is still a normal number), the shift that rounds
// to an integer kept in the low bits, ln 2 split so that n * kLn2Hi is exact, and the degree of
// the Taylor polynomial on |r| <= ln2 / 2 (its truncation error is far below an ulp).
template <class T>
struct ExpConsts;
template <>
struct ExpConsts<double> {
  using Bits = uint64_t;
  static constexpr double kMin = -708.0, kShift = 0x1.8p52;
  static constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  static constexpr int kMantissa = 52, kBias = 1023, kDegree = 13;
};
template <>
struct ExpConsts<float> {
  using Bits = uint32_t;
  static constexpr float kMin = -87.0f, kShift = 0x1.8p23f;
  static constexpr float kLn2Hi = 6.9314575195e-01f, kLn2Lo = 1.4286067653e-06f;
  static constexpr int kMantissa = 23, kBias = 127, kDegree = 8;
};

// The polynomial's coefficients 1/k!, k = 0..degree, computed at compile time.
template <class T>
constexpr std::array<T, ExpConsts<T>::kDegree + 1> inverse_factorials() {
  std::array<T, ExpConsts<T>::kDegree + 1> a{};
  double f = 1;
  for (int k = 0; k <= ExpConsts<T>::kDegree; ++k) {
    if (k > 0) f /= k;
    a[k] = static_cast<T>(f);
  }
  return a;
}
template <class T>
constexpr auto kInvFactorial = inverse_factorials<T>();

// exp(x) for x <= 0 or NaN, which is every exp these kernels take (x - max, a log-probability).
// std::exp is a libm call that GCC will not vectorise without -ffast-math; this one is: x = n ln2
// + r, exp(r) by a polynomial, 2^n built from bits. Results below the normal range flush to 0.
// The clamp is done with bit masks, not a ternary: GCC turns a select into a branch here, and a
// branch stops vectorisation.
template <class T>
[[gnu::always_inline]] inline T exp_nonpos(T x) {
  using C = ExpConsts<T>;
  using Bits = typename C::Bits;
  constexpr Bits kAbs = ~Bits(0) >> 1;
  constexpr Bits kInf = std::bit_cast<Bits>(std::numeric_limits<T>::infinity());
  constexpr Bits kMinBits = std::bit_cast<Bits>(C::kMin);
  const Bits xb = std::bit_cast<Bits>(x);
  const bool nan = (xb & kAbs) > kInf;
  // x < kMin for negative x (sign and magnitude: a larger magnitude is a larger pattern); -inf too.
  const Bits small = Bits(0) - static_cast<Bits>(!nan & (xb > kMinBits));  // all ones or zero
  const T xc = std::bit_cast<T>((kMinBits & small) | (xb & ~small));
  const T t = xc * T(1.4426950408889634) + C::kShift;
  const T n = t - C::kShift;
  const T r = (xc - n * C::kLn2Hi) - n * C::kLn2Lo;
  T p = kInvFactorial<T>[C::kDegree];
  for (int k = C::kDegree - 1; k >= 0; --k) p = p * r + kInvFactorial<T>[k];
  // n sits in the low bits of t; unsigned arithmetic keeps a NaN's garbage free of UB.
  const Bits e = std::bit_cast<Bits>(t) - std::bit_cast<Bits>(C::kShift) + Bits(C::kBias);
  const T y = p * std::bit_cast<T>(static_cast<Bits>(e << C::kMantissa));
  return std::bit_cast<T>(std::bit_cast<Bits>(y) & ~small);
}

template <class T>
T row_max(const T* x, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// sum(exp(x - m)), also storing each exp in e when e is given (softmax reuses them).
template <class T>
T row_sum_exp(const T* x, T m, int64_t n, T* e) {
  T s = 0;
  if (e) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) {
      const T v = exp_nonpos(x[i] - m);
      e[i] = v;
      s += v;
    }
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += exp_nonpos(x[i] - m);
  }
  return s;
}

template <class T>
void softmax_forward_impl(const T* x, T* y, int64_t rows, int64_t n, bool log) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const T m = row_max(xr, n);
    if (log) {
      const T ls = std::log(row_sum_exp<T>(xr, m, n, nullptr));
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) - ls;
    } else {
      const T inv = T(1) / row_sum_exp<T>(xr, m, n, yr);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
    }
  }
}

template <class T>
void softmax_backward_impl(const T* y, const T* dy, T* dx, int64_t rows, int64_t n, bool log) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = y + r * n;
    const T* gr = dy + r * n;
    T* dr = dx + r * n;
    T s = 0;
    if (log) {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < n; ++i) s += gr[i];
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dr[i] = gr[i] - exp_nonpos(yr[i]) * s;
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < n; ++i) s += gr[i] * yr[i];
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dr[i] = yr[i] * (gr[i] - s);
    }
  }
}

template <class T, class I>
void ce_forward_impl(const T* x, const I* t, int64_t rows, int64_t n, int64_t ignore, int64_t count,
                     T* mx, T* ls, T* nll, T* loss) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    mx[r] = row_max(xr, n);
    ls[r] = std::log(row_sum_exp<T>(xr, mx[r], n, nullptr));
    // (max - x[t]) + logsum, not logsumexp - x[t]: no rounding at the logits' magnitude.
    nll[r] = t[r] == ignore ? T(0) : (mx[r] - xr[t[r]]) + ls[r];
  }
  // The mean is summed serially in row order: a fixed order, whatever the thread count.
  T total = 0;
  for (int64_t r = 0; r < rows; ++r)
    if (t[r] != ignore) total += nll[r];
  *loss = count > 0 ? total / static_cast<T>(count) : T(0);
}

template <class T, class I>
void ce_backward_impl(const T* x, const I* t, const T* mx, const T* ls, T scale, int64_t rows,
                      int64_t n, int64_t ignore, T* dx) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* dr = dx + r * n;
    if (t[r] == ignore) {
      std::fill(dr, dr + n, T(0));
      continue;
    }
    const T m = mx[r], lsr = ls[r];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dr[i] = scale * exp_nonpos((xr[i] - m) - lsr);
    dr[t[r]] -= scale;
  }
}

}  // namespace

void softmax_forward(const Tensor& x, const Tensor& y, bool log) {
  RILL_DISPATCH_FLOAT(x.dtype(), "softmax", T, {
    softmax_forward_impl<T>(x.data<T>(), y.data<T>(), x.size(0), x.size(1), log);
  });
}

void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) {
  RILL_DISPATCH_FLOAT(y.dtype(), "softmax_backward", T, {
    softmax_backward_impl<T>(y.data<T>(), dy.data<T>(), dx.data<T>(), y.size(0), y.size(1), log);
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                           int64_t count, const Tensor& row_max, const Tensor& row_logsum,
                           const Tensor& loss) {
  RILL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", T, {
    // Per-row losses go through a scratch buffer so that their sum can be taken in order.
    Tensor nll = Tensor::empty({logits.size(0)}, logits.dtype());
    RILL_DISPATCH_INDEX(target.dtype(), "cross_entropy", I, {
      ce_forward_impl<T, I>(logits.data<T>(), target.data<I>(), logits.size(0), logits.size(1),
                            ignore_index, count, row_max.data<T>(), row_logsum.data<T>(),
                            nll.data<T>(), loss.data<T>());
    });
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& row_max,
                            const Tensor& row_logsum, const Tensor& dloss, int64_t ignore_index,
                            int64_t count, const Tensor& dlogits) {
  RILL_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", T, {
    const T scale = count > 0 ? dloss.item<T>() / static_cast<T>(count) : T(0);
    RILL_DISPATCH_INDEX(target.dtype(), "cross_entropy_backward", I, {
      ce_backward_impl<T, I>(logits.data<T>(), target.data<I>(), row_max.data<T>(),
                             row_logsum.data<T>(), scale, logits.size(0), logits.size(1),
                             ignore_index, dlogits.data<T>());
    });
  });
}

}  // namespace rill::cpu
