// Fast softmax-family kernels. OpenMP spreads rows over threads; within a row every pass is a
// contiguous vector loop (max and exp from vec_math, the rest `omp simd`), and a row is
// always reduced whole by one thread, so the result is bitwise the same for any thread count.
#include "rill/backend/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "rill/backend/cpu/vec_math.h"

namespace rill::cpu {

namespace {

// Below this many elements a kernel stays on one thread: forking would cost more than it saves.
constexpr int64_t kParallelMin = 32768;

template <class T>
void softmax_forward_impl(const T* x, T* y, int64_t rows, int64_t n, bool log) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const T m = vec_row_max<T>(xr, n);
    if (log) {
      const T ls = std::log(vec_row_sum_exp<T>(xr, m, n, nullptr));
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yr[i] = (xr[i] - m) - ls;
    } else {
      const T inv = T(1) / vec_row_sum_exp<T>(xr, m, n, yr);
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
      vec_log_softmax_backward<T>(yr, gr, s, dr, n);
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
    mx[r] = vec_row_max<T>(xr, n);
    ls[r] = std::log(vec_row_sum_exp<T>(xr, mx[r], n, nullptr));
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
    vec_scaled_exp<T>(xr, m, lsr, scale, dr, n);
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
