// Scans: a contiguous tensor is seen as [outer, n, inner] around the scan dim. When inner > 1,
// lines are processed in tiles of neighbouring lines that advance together one position at a
// time, so the inner loop runs across contiguous lines and vectorises; when inner == 1 each line
// is a contiguous row, scanned on its own (striding across rows would alias in cache). Tiles are a
// fixed split of the shape, spread over threads; every line is scanned in order, so results are
// bitwise identical for any thread count.
#include "rill/backend/cpu/scan.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "rill/backend/cpu/copy.h"

namespace rill::cpu {

namespace {

constexpr int64_t kInnerTile = 256;  // lines per tile when lines are adjacent (inner > 1)
constexpr int64_t kRowTile = 64;     // rows per work unit when each line is a contiguous row
constexpr int64_t kParallelMin = 32768;

// A tile of `count` lines: element (line i, position j) sits at base + j * pos_stride +
// i * line_stride. rows: each line is a contiguous row (pos_stride 1), else lines are adjacent
// (line_stride 1) and count <= kInnerTile.
struct Tile {
  int64_t base, count, line_stride, pos_stride;
  bool rows;
};

Tensor contiguous_input(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype());
  copy(t, c);
  return c;
}

// fn(Tile) for every tile of the shape around `dim`, in parallel.
template <class F>
void parallel_tiles(const Shape& shape, int64_t dim, F&& fn) {
  const int64_t total = numel(shape);
  if (total == 0) return;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(shape.size()); ++d) inner *= shape[d];
  const int64_t n = shape[dim];
  if (inner > 1) {
    const int64_t per = (inner + kInnerTile - 1) / kInnerTile;
    const int64_t units = outer * per;
#pragma omp parallel for schedule(static) if (units > 1 && total > kParallelMin)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t a = u / per, b0 = (u % per) * kInnerTile;
      fn(Tile{a * n * inner + b0, std::min(kInnerTile, inner - b0), 1, inner, false});
    }
  } else {
    const int64_t units = (outer + kRowTile - 1) / kRowTile;
#pragma omp parallel for schedule(static) if (units > 1 && total > kParallelMin)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t a0 = u * kRowTile;
      fn(Tile{a0 * n, std::min(kRowTile, outer - a0), n, 1, true});
    }
  }
}

template <class T>
void cumsum_impl(const T* x, T* y, const Shape& shape, int64_t dim, bool reverse) {
  const int64_t n = shape[dim];
  parallel_tiles(shape, dim, [&](const Tile& t) {
    if (t.rows) {  // contiguous rows: one sequential pass per row
      for (int64_t i = 0; i < t.count; ++i) {
        const T* xr = x + t.base + i * t.line_stride;
        T* yr = y + t.base + i * t.line_stride;
        T acc = 0;
        for (int64_t p = 0; p < n; ++p) {
          const int64_t j = reverse ? n - 1 - p : p;
          yr[j] = acc += xr[j];
        }
      }
      return;
    }
    T acc[kInnerTile];
    std::fill(acc, acc + t.count, T(0));
    for (int64_t p = 0; p < n; ++p) {
      const int64_t j = reverse ? n - 1 - p : p;
      const T* xr = x + t.base + j * t.pos_stride;
      T* yr = y + t.base + j * t.pos_stride;
#pragma omp simd
      for (int64_t i = 0; i < t.count; ++i) yr[i] = acc[i] += xr[i];
    }
  });
}

// One step of the running log-sum-exp, branch-free so that a loop across lines vectorises. The
// sum s is kept relative to the max m; equal values (including equal infinities) contribute
// exp(0) = 1 instead of exp(nan).
template <class T>
inline T lse_step(T v, T& m, T& s) {
  const T d = v == m ? T(0) : -std::abs(v - m);
  const T e = std::exp(d);
  const bool up = v > m;
  s = up ? s * e + T(1) : s + e;
  m = up ? v : m;
  return m + std::log(s);
}

template <class T>
void logcumsumexp_impl(const T* x, T* y, const Shape& shape, int64_t dim, bool reverse) {
  const int64_t n = shape[dim];
  parallel_tiles(shape, dim, [&](const Tile& t) {
    const T neg_inf = -std::numeric_limits<T>::infinity();
    if (t.rows) {  // contiguous rows: one sequential pass per row
      for (int64_t i = 0; i < t.count; ++i) {
        const T* xr = x + t.base + i * t.line_stride;
        T* yr = y + t.base + i * t.line_stride;
        T m = neg_inf, s = 0;
        for (int64_t p = 0; p < n; ++p) {
          const int64_t j = reverse ? n - 1 - p : p;
          yr[j] = lse_step(xr[j], m, s);
        }
      }
      return;
    }
    T m[kInnerTile], s[kInnerTile];
    std::fill(m, m + t.count, neg_inf);
    std::fill(s, s + t.count, T(0));
    for (int64_t p = 0; p < n; ++p) {
      const int64_t j = reverse ? n - 1 - p : p;
      const T* xr = x + t.base + j * t.pos_stride;
      T* yr = y + t.base + j * t.pos_stride;
#pragma omp simd
      for (int64_t i = 0; i < t.count; ++i) yr[i] = lse_step(xr[i], m[i], s[i]);
    }
  });
}

// One step backward: t = dy + exp(y - y_next) t (factor <= 1), dx = exp(x - y) t; -inf inputs
// get 0 rather than exp(-inf - -inf).
template <class T>
inline T lse_back_step(T xv, T yv, T g, T& t, T& y_next) {
  const T factor = yv == y_next ? T(1) : std::exp(yv - y_next);
  t = g + factor * t;
  y_next = yv;
  return xv == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(xv - yv) * t;
}

template <class T>
void logcumsumexp_backward_impl(const T* x, const T* y, const T* g, T* dx, const Shape& shape,
                                int64_t dim, bool reverse) {
  const int64_t n = shape[dim];
  parallel_tiles(shape, dim, [&](const Tile& t) {
    // t starts at 0, so the first y_next only has to keep exp(y - y_next) * 0 from being NaN.
    const T inf = std::numeric_limits<T>::infinity();
    if (t.rows) {  // contiguous rows: one sequential pass per row
      for (int64_t i = 0; i < t.count; ++i) {
        const int64_t o = t.base + i * t.line_stride;
        T acc = 0, y_next = inf;
        for (int64_t p = n - 1; p >= 0; --p) {
          const int64_t j = o + (reverse ? n - 1 - p : p);
          dx[j] = lse_back_step(x[j], y[j], g[j], acc, y_next);
        }
      }
      return;
    }
    T acc[kInnerTile], y_next[kInnerTile];
    std::fill(acc, acc + t.count, T(0));
    std::fill(y_next, y_next + t.count, inf);
    for (int64_t p = n - 1; p >= 0; --p) {
      const int64_t o = t.base + (reverse ? n - 1 - p : p) * t.pos_stride;
#pragma omp simd
      for (int64_t i = 0; i < t.count; ++i)
        dx[o + i] = lse_back_step(x[o + i], y[o + i], g[o + i], acc[i], y_next[i]);
    }
  });
}

void check_out(const Tensor& out, const Tensor& x, const char* op) {
  RILL_CHECK(out.is_contiguous() && out.shape() == x.shape(),
             "[{}] cpu kernel needs a contiguous output of shape {}, got {} with strides {}", op,
             shape_str(x.shape()), shape_str(out.shape()), shape_str(out.strides()));
}

}  // namespace

void cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  check_out(out, x, "cumsum");
  Tensor xc = contiguous_input(x);
  RILL_DISPATCH_ALL(x.dtype(), "cumsum", T,
                    cumsum_impl<T>(xc.data<T>(), out.data<T>(), x.shape(), dim, reverse));
}

void logcumsumexp(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  check_out(out, x, "logcumsumexp");
  Tensor xc = contiguous_input(x);
  RILL_DISPATCH_FLOAT(x.dtype(), "logcumsumexp", T,
                      logcumsumexp_impl<T>(xc.data<T>(), out.data<T>(), x.shape(), dim, reverse));
}

void logcumsumexp_backward(const Tensor& x, const Tensor& y, const Tensor& dy, int64_t dim,
                           bool reverse, const Tensor& dx) {
  check_out(dx, x, "logcumsumexp");
  Tensor xc = contiguous_input(x), yc = contiguous_input(y), gc = contiguous_input(dy);
  RILL_DISPATCH_FLOAT(x.dtype(), "logcumsumexp", T,
                      logcumsumexp_backward_impl<T>(xc.data<T>(), yc.data<T>(), gc.data<T>(),
                                                    dx.data<T>(), x.shape(), dim, reverse));
}

}  // namespace rill::cpu
