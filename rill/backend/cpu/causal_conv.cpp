// Fast causal depthwise convolution. Each output row (b, t) reads W input rows and W weight
// rows and is vectorised over channels; rows go to threads in fixed blocks. The weight gradient
// is a reduction over every (b, t): each block of kRows rows sums into its own partial, and the
// partials are added in block order, so the result never depends on the thread count.
#include "rill/backend/cpu/causal_conv.h"

#include <vector>

namespace rill::cpu {

namespace {

constexpr int64_t kRows = 64;  // rows of (b, t) per parallel unit

template <class T>
struct Rows {
  const T* x;
  const T* prev;  // null: zeros
  int64_t t_len, w_len, d;
  // Row s of sequence b of the padded input, or null for a zero row.
  const T* row(int64_t b, int64_t s) const {
    if (s >= 0) return x + (b * t_len + s) * d;
    return prev ? prev + (b * (w_len - 1) + (w_len - 1 + s)) * d : nullptr;
  }
};

template <class T>
void forward_impl(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& y) {
  {
    const int64_t B = x.size(0), L = x.size(1), D = x.size(2), W = w.size(0);
    const Rows<T> in{x.data<T>(), prev.defined() ? prev.data<T>() : nullptr, L, W, D};
    const T* wp = w.data<T>();
    T* yp = y.data<T>();
    const int64_t rows = B * L, units = (rows + kRows - 1) / kRows;
#pragma omp parallel for schedule(static) if (rows * D * W > 65536)
    for (int64_t u = 0; u < units; ++u)
      for (int64_t r = u * kRows; r < std::min(rows, (u + 1) * kRows); ++r) {
        const int64_t b = r / L, t = r % L;
        T* out = yp + r * D;
        const T* x0 = in.row(b, t);
        const T* w0 = wp;
#pragma omp simd
        for (int64_t c = 0; c < D; ++c) out[c] = w0[c] * x0[c];
        for (int64_t j = 1; j < W; ++j) {
          const T* xr = in.row(b, t - j);
          if (!xr) continue;
          const T* wr = wp + j * D;
#pragma omp simd
          for (int64_t c = 0; c < D; ++c) out[c] += wr[c] * xr[c];
        }
      }
  }
}

template <class T>
void backward_impl(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& dy,
                   const Tensor& dx, const Tensor& dw, const Tensor& dprev) {
  {
    const int64_t B = x.size(0), L = x.size(1), D = x.size(2), W = w.size(0);
    const Rows<T> in{x.data<T>(), prev.defined() ? prev.data<T>() : nullptr, L, W, D};
    const T* wp = w.data<T>();
    const T* g = dy.data<T>();
    // Input-side gradient over padded rows s in [-(W-1), L) of every sequence.
    const int64_t padded = L + W - 1, rows = B * padded, units = (rows + kRows - 1) / kRows;
    const bool want_prev = dprev.defined() && W > 1;
    T* dxp = dx.data<T>();
    T* dpp = want_prev ? dprev.data<T>() : nullptr;
#pragma omp parallel for schedule(static) if (rows * D * W > 65536)
    for (int64_t u = 0; u < units; ++u)
      for (int64_t r = u * kRows; r < std::min(rows, (u + 1) * kRows); ++r) {
        const int64_t b = r / padded, s = r % padded - (W - 1);
        T* out = s >= 0 ? dxp + (b * L + s) * D
                        : (want_prev ? dpp + (b * (W - 1) + W - 1 + s) * D : nullptr);
        if (!out) continue;
        for (int64_t c = 0; c < D; ++c) out[c] = T(0);
        for (int64_t j = 0; j < W; ++j) {
          if (s + j < 0 || s + j >= L) continue;
          const T* gr = g + (b * L + s + j) * D;
          const T* wr = wp + j * D;
#pragma omp simd
          for (int64_t c = 0; c < D; ++c) out[c] += wr[c] * gr[c];
        }
      }
    // Weight gradient: partial sums per block of output rows, then added in block order.
    const int64_t out_rows = B * L, blocks = (out_rows + kRows - 1) / kRows;
    std::vector<T> partial(static_cast<size_t>(blocks * W * D));
#pragma omp parallel for schedule(static) if (out_rows * D * W > 65536)
    for (int64_t u = 0; u < blocks; ++u) {
      T* acc = partial.data() + u * W * D;
      for (int64_t i = 0; i < W * D; ++i) acc[i] = T(0);
      for (int64_t r = u * kRows; r < std::min(out_rows, (u + 1) * kRows); ++r) {
        const int64_t b = r / L, t = r % L;
        const T* gr = g + r * D;
        for (int64_t j = 0; j < W; ++j) {
          const T* xr = in.row(b, t - j);
          if (!xr) continue;
          T* a = acc + j * D;
#pragma omp simd
          for (int64_t c = 0; c < D; ++c) a[c] += gr[c] * xr[c];
        }
      }
    }
    T* dwp = dw.data<T>();
    for (int64_t i = 0; i < W * D; ++i) dwp[i] = T(0);
    for (int64_t u = 0; u < blocks; ++u) {
      const T* acc = partial.data() + u * W * D;
#pragma omp simd
      for (int64_t i = 0; i < W * D; ++i) dwp[i] += acc[i];
    }
  }
}

}  // namespace

void causal_conv1d_forward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& y) {
  RILL_DISPATCH_FLOAT(x.dtype(), "causal_conv1d", T, forward_impl<T>(x, w, prev, y));
}

void causal_conv1d_backward(const Tensor& x, const Tensor& w, const Tensor& prev, const Tensor& dy,
                            const Tensor& dx, const Tensor& dw, const Tensor& dprev) {
  RILL_DISPATCH_FLOAT(x.dtype(), "causal_conv1d", T,
                      backward_impl<T>(x, w, prev, dy, dx, dw, dprev));
}

}  // namespace rill::cpu
