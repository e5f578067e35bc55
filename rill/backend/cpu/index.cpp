// Concatenation copies blocks per (input, outer row) in parallel. Gathers run through
// parallel_runs with a stride-0 view along the indexed dim, so each run reads
// "base + index * stride". Scatter-adds (the backwards) hand each destination element to exactly
// one work unit, which adds its sources in index order.
#include "rill/backend/cpu/index.h"

#include <algorithm>
#include <cstring>

#include "rill/backend/cpu/copy.h"
#include "rill/backend/cpu/strided.h"

namespace rill::cpu {

namespace {

constexpr int64_t kParallelMin = 32768;
constexpr int64_t kColumns = 256;  // inner positions per gather_backward work unit

int64_t prod(const Shape& s, int64_t begin, int64_t end) {
  int64_t n = 1;
  for (int64_t d = begin; d < end; ++d) n *= s[d];
  return n;
}

Tensor contiguous_input(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype());
  copy(t, c);
  return c;
}

// t viewed with `shape`, its own strides, and stride 0 along dim (the index supplies that part).
Tensor without_dim(const Tensor& t, const Shape& shape, int64_t dim) {
  Shape st = t.strides();
  st[dim] = 0;
  return make_view(t, shape, st, t.offset());
}

// Offsets (with `strides`) of every multi-index over dims [begin, end) of shape, row-major.
std::vector<int64_t> offsets_over(const Shape& shape, const Shape& strides, int64_t begin,
                                  int64_t end) {
  std::vector<int64_t> out{0};
  for (int64_t d = begin; d < end; ++d) {
    std::vector<int64_t> next;
    next.reserve(out.size() * shape[d]);
    for (int64_t o : out)
      for (int64_t i = 0; i < shape[d]; ++i) next.push_back(o + i * strides[d]);
    out.swap(next);
  }
  return out;
}

void check_contiguous_out(const Tensor& out, const char* op) {
  RILL_CHECK(out.is_contiguous(),
             "[{}] cpu kernel needs a contiguous output, got {} with strides {}", op,
             shape_str(out.shape()), shape_str(out.strides()));
}

// out[i] = x[xoff + index * xs] along runs; `iv` is the index viewed with the output's shape.
template <class T, class I>
void gather_runs(const Tensor& iv, const Tensor& xv, const Tensor& out, int64_t xs) {
  const I* ib = base_ptr<I>(iv);
  const T* xb = base_ptr<T>(xv);
  T* ob = base_ptr<T>(out);
  parallel_runs<3>(out.shape(), {&iv, &xv, &out}, [&](auto off, auto st, int64_t n) {
    const I* ip = ib + off[0];
    const T* xp = xb + off[1];
    T* op = ob + off[2];
    if (st[0] == 0) {  // one index for the whole run: copy a slice of x
      const T* src = xp + static_cast<int64_t>(ip[0]) * xs;
      if (st[1] == 1 && st[2] == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) op[i] = src[i];
      } else {
        for (int64_t i = 0; i < n; ++i) op[i * st[2]] = src[i * st[1]];
      }
    } else {
      for (int64_t i = 0; i < n; ++i)
        op[i * st[2]] = xp[i * st[1] + static_cast<int64_t>(ip[i * st[0]]) * xs];
    }
  });
}

template <class T, class I>
void index_select_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  Shape is(out.dim(), 0);
  is[dim] = index.strides()[0];
  gather_runs<T, I>(make_view(index, out.shape(), is, index.offset()),
                    without_dim(x, out.shape(), dim), out, x.strides()[dim]);
}

template <class T, class I>
void gather_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  gather_runs<T, I>(index, without_dim(x, index.shape(), dim), out, x.strides()[dim]);
}

// dy seen as [outer, k, inner] and dx as [outer, n, inner]. The k indices are bucketed by
// destination row with a stable counting sort; each (outer, row) unit then zeroes its row and
// adds its sources in order of k.
template <class T, class I>
void index_select_backward_impl(const Tensor& dy, int64_t dim, const Tensor& index,
                                const Tensor& dx) {
  Tensor g = contiguous_input(dy), idx = contiguous_input(index);
  const Shape& s = dx.shape();
  const int64_t outer = prod(s, 0, dim), n = s[dim], inner = prod(s, dim + 1, dx.dim());
  const int64_t k = idx.numel();
  const I* ip = idx.data<I>();
  std::vector<int64_t> start(n + 1, 0), order(k);
  for (int64_t j = 0; j < k; ++j) ++start[static_cast<int64_t>(ip[j]) + 1];
  for (int64_t r = 0; r < n; ++r) start[r + 1] += start[r];
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (int64_t j = 0; j < k; ++j) order[next[static_cast<int64_t>(ip[j])]++] = j;

  const T* gp = g.data<T>();
  T* dp = dx.data<T>();
  const int64_t units = outer * n;
#pragma omp parallel for schedule(static) if (units > 1 && dx.numel() + g.numel() > kParallelMin)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t a = u / n, r = u % n;
    T* d = dp + u * inner;
    std::fill(d, d + inner, T(0));
    for (int64_t e = start[r]; e < start[r + 1]; ++e) {
      const T* src = gp + (a * k + order[e]) * inner;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) d[i] += src[i];
    }
  }
}

// index (and dy) seen as [outer, j, inner]. A unit owns one outer position and a block of inner
// positions, i.e. a set of dx lines along dim that no other unit touches, and walks j in order.
template <class T, class I>
void gather_backward_impl(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx) {
  fill(dx, 0.0);
  Tensor g = contiguous_input(dy), idx = contiguous_input(index);
  const Shape& s = idx.shape();
  const int64_t rank = idx.dim();
  const int64_t outer = prod(s, 0, dim), len = s[dim], inner = prod(s, dim + 1, rank);
  const std::vector<int64_t> outer_off = offsets_over(s, dx.strides(), 0, dim);
  const std::vector<int64_t> inner_off = offsets_over(s, dx.strides(), dim + 1, rank);
  const int64_t ds = dx.strides()[dim];
  const I* ip = idx.data<I>();
  const T* gp = g.data<T>();
  T* dp = dx.data<T>();
  const int64_t per = (inner + kColumns - 1) / kColumns;
  const int64_t units = outer * per;
#pragma omp parallel for schedule(static) if (units > 1 && g.numel() > kParallelMin)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t a = u / per, b0 = (u % per) * kColumns, b1 = std::min(inner, b0 + kColumns);
    T* d = dp + outer_off[a];
    for (int64_t j = 0; j < len; ++j) {
      const int64_t row = (a * len + j) * inner;
      for (int64_t b = b0; b < b1; ++b)
        d[static_cast<int64_t>(ip[row + b]) * ds + inner_off[b]] += gp[row + b];
    }
  }
}

}  // namespace

void concat(const std::vector<Tensor>& xs, int64_t dim, const Tensor& out) {
  check_contiguous_out(out, "concat");
  const Shape& s = out.shape();
  const int64_t outer = prod(s, 0, dim), total = s[dim], inner = prod(s, dim + 1, out.dim());
  const size_t esz = dtype_size(out.dtype());
  // Contiguous inputs are copied as one block per outer row; others go through copy().
  struct Part {
    const char* src;
    int64_t start, len;
  };
  std::vector<Part> parts;
  int64_t start = 0;
  for (const Tensor& x : xs) {
    const int64_t len = x.shape()[dim];
    if (x.numel() > 0) {
      if (x.is_contiguous()) {
        parts.push_back({static_cast<const char*>(x.data_ptr()), start, len});
      } else {
        copy(x,
             make_view(out, x.shape(), out.strides(), out.offset() + start * out.strides()[dim]));
      }
    }
    start += len;
  }
  char* ob = static_cast<char*>(out.data_ptr());
  const int64_t units = static_cast<int64_t>(parts.size()) * outer;
#pragma omp parallel for schedule(static) if (units > 1 && out.numel() > kParallelMin)
  for (int64_t u = 0; u < units; ++u) {
    const Part& p = parts[u / outer];
    const int64_t a = u % outer;
    std::memcpy(ob + (a * total + p.start) * inner * esz, p.src + a * p.len * inner * esz,
                p.len * inner * esz);
  }
}

void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  RILL_DISPATCH_ALL(x.dtype(), "index_select", T,
                    RILL_DISPATCH_INDEX(index.dtype(), "index_select", I,
                                        index_select_impl<T, I>(x, dim, index, out)));
}

void index_select_backward(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx) {
  check_contiguous_out(dx, "index_select");
  RILL_DISPATCH_FLOAT(dy.dtype(), "index_select", T,
                      RILL_DISPATCH_INDEX(index.dtype(), "index_select", I,
                                          index_select_backward_impl<T, I>(dy, dim, index, dx)));
}

void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  RILL_DISPATCH_ALL(
      x.dtype(), "gather", T,
      RILL_DISPATCH_INDEX(index.dtype(), "gather", I, gather_impl<T, I>(x, dim, index, out)));
}

void gather_backward(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx) {
  check_contiguous_out(dx, "gather");
  RILL_DISPATCH_FLOAT(dy.dtype(), "gather", T,
                      RILL_DISPATCH_INDEX(index.dtype(), "gather", I,
                                          gather_backward_impl<T, I>(dy, dim, index, dx)));
}

}  // namespace rill::cpu
