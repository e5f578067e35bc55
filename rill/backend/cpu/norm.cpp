// Fast LayerNorm / RMSNorm kernels. Rows are spread over OpenMP threads and each row is reduced
// whole by one thread with `omp simd` loops; the presence of weight and bias is a template
// parameter so that the inner loops carry no branches. Backward sums dweight / dbias per fixed
// block of rows (the split depends only on the shape) and adds the partials in block order.
#include "rill/backend/cpu/norm.h"

#include <algorithm>
#include <cmath>

namespace rill::cpu {

namespace {

// Below this many elements a kernel stays on one thread: forking would cost more than it saves.
constexpr int64_t kParallelMin = 32768;
// Backward's row blocks: at most kMaxBlocks partials of [D], each of at least kMinBlockRows rows.
constexpr int64_t kMaxBlocks = 128;
constexpr int64_t kMinBlockRows = 8;

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Per-row statistics: mu (0 for RMSNorm) and rstd = 1 / sqrt(mean((x - mu)^2) + eps).
template <class T, bool kCentered>
void row_stats(const T* x, int64_t n, T eps, T& mu, T& rs) {
  mu = 0;
  if constexpr (kCentered) {
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += x[i];
    mu = s / static_cast<T>(n);
  }
  const T m = mu;
  T ss = 0;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < n; ++i) ss += (x[i] - m) * (x[i] - m);
  rs = T(1) / std::sqrt(ss / static_cast<T>(n) + eps);
}

template <class T, bool kCentered, bool kW, bool kB>
void norm_forward_rows(const T* x, const T* w, const T* b, T eps, T* y, T* mean, T* rstd,
                       int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    T mu, rs;
    row_stats<T, kCentered>(xr, n, eps, mu, rs);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      T v = (xr[i] - mu) * rs;
      if constexpr (kW) v *= w[i];
      if constexpr (kB) v += b[i];
      yr[i] = v;
    }
    if constexpr (kCentered) mean[r] = mu;
    rstd[r] = rs;
  }
}

template <class T, bool kCentered>
void norm_forward(const T* x, const T* w, const T* b, T eps, T* y, T* mean, T* rstd, int64_t rows,
                  int64_t n) {
  if (w && b)
    norm_forward_rows<T, kCentered, true, true>(x, w, b, eps, y, mean, rstd, rows, n);
  else if (w)
    norm_forward_rows<T, kCentered, true, false>(x, w, b, eps, y, mean, rstd, rows, n);
  else if (b)
    norm_forward_rows<T, kCentered, false, true>(x, w, b, eps, y, mean, rstd, rows, n);
  else
    norm_forward_rows<T, kCentered, false, false>(x, w, b, eps, y, mean, rstd, rows, n);
}

// With xhat = (x - mean) * rstd and g = dy * weight:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) (RMSNorm drops the mean(g) term);
// block `blk` adds dy * xhat and dy of its rows into its own partials pw and pb.
template <class T, bool kCentered, bool kW>
void norm_backward_rows(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx,
                        T* pw, T* pb, int64_t rows, int64_t n, int64_t block_rows,
                        int64_t nblocks) {
#pragma omp parallel for schedule(static) if (nblocks > 1 && rows * n > kParallelMin)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    T* pwb = pw ? pw + blk * n : nullptr;
    T* pbb = pb ? pb + blk * n : nullptr;
    if (pwb) std::fill(pwb, pwb + n, T(0));
    if (pbb) std::fill(pbb, pbb + n, T(0));
    const int64_t end = std::min(rows, (blk + 1) * block_rows);
    for (int64_t r = blk * block_rows; r < end; ++r) {
      const T* xr = x + r * n;
      const T* gr = dy + r * n;
      const T mu = kCentered ? mean[r] : T(0);
      const T rs = rstd[r];
      if (dx) {
        T sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
        for (int64_t i = 0; i < n; ++i) {
          const T g = kW ? gr[i] * w[i] : gr[i];
          sum_g += g;
          sum_gx += g * ((xr[i] - mu) * rs);
        }
        const T mean_g = kCentered ? sum_g / static_cast<T>(n) : T(0);
        const T mean_gx = sum_gx / static_cast<T>(n);
        T* dr = dx + r * n;
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const T g = kW ? gr[i] * w[i] : gr[i];
          dr[i] = rs * (g - mean_g - ((xr[i] - mu) * rs) * mean_gx);
        }
      }
      if (pwb) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) pwb[i] += gr[i] * ((xr[i] - mu) * rs);
      }
      if (pbb) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) pbb[i] += gr[i];
      }
    }
  }
}

// out[i] = sum over blocks of partial[blk][i], blocks taken in order.
template <class T>
void sum_blocks(const T* partial, int64_t nblocks, int64_t n, T* out) {
  std::fill(out, out + n, T(0));
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const T* p = partial + blk * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] += p[i];
  }
}

template <class T, bool kCentered>
void norm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                   const Tensor& dy, const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  const int64_t rows = x.size(0), n = x.size(1);
  const int64_t block_rows = std::max(kMinBlockRows, (rows + kMaxBlocks - 1) / kMaxBlocks);
  const int64_t nblocks = (rows + block_rows - 1) / block_rows;
  // Partials come from the caching allocator: reused memory, no fresh page faults.
  Tensor pw = dweight.defined() ? Tensor::empty({nblocks, n}, x.dtype()) : Tensor();
  Tensor pb = dbias.defined() ? Tensor::empty({nblocks, n}, x.dtype()) : Tensor();
  const T* w = ptr_or_null<T>(weight);
  const T* mu = kCentered ? mean.data<T>() : nullptr;
  if (w)
    norm_backward_rows<T, kCentered, true>(x.data<T>(), w, mu, rstd.data<T>(), dy.data<T>(),
                                           ptr_or_null<T>(dx), ptr_or_null<T>(pw),
                                           ptr_or_null<T>(pb), rows, n, block_rows, nblocks);
  else
    norm_backward_rows<T, kCentered, false>(x.data<T>(), w, mu, rstd.data<T>(), dy.data<T>(),
                                            ptr_or_null<T>(dx), ptr_or_null<T>(pw),
                                            ptr_or_null<T>(pb), rows, n, block_rows, nblocks);
  if (dweight.defined()) sum_blocks(pw.data<T>(), nblocks, n, dweight.data<T>());
  if (dbias.defined()) sum_blocks(pb.data<T>(), nblocks, n, dbias.data<T>());
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  RILL_DISPATCH_FLOAT(x.dtype(), "layer_norm", T, {
    norm_forward<T, true>(x.data<T>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias),
                          static_cast<T>(eps), y.data<T>(), mean.data<T>(), rstd.data<T>(),
                          x.size(0), x.size(1));
  });
}

void layer_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias) {
  RILL_DISPATCH_FLOAT(x.dtype(), "layer_norm_backward", T,
                      { norm_backward<T, true>(x, weight, mean, rstd, dy, dx, dweight, dbias); });
}

void rms_norm_forward(const Tensor& x, const Tensor& weight, double eps, const Tensor& y,
                      const Tensor& rstd) {
  RILL_DISPATCH_FLOAT(x.dtype(), "rms_norm", T, {
    norm_forward<T, false>(x.data<T>(), ptr_or_null<T>(weight), nullptr, static_cast<T>(eps),
                           y.data<T>(), nullptr, rstd.data<T>(), x.size(0), x.size(1));
  });
}

void rms_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& rstd, const Tensor& dy,
                       const Tensor& dx, const Tensor& dweight) {
  RILL_DISPATCH_FLOAT(x.dtype(), "rms_norm_backward", T, {
    norm_backward<T, false>(x, weight, Tensor(), rstd, dy, dx, dweight, Tensor());
  });
}

}  // namespace rill::cpu
