// Reductions: the reduced dims are moved last and made contiguous, giving [rows, R]. Each row is
// cut into fixed blocks of kBlock elements; blocks are reduced in parallel and their partials
// combined in order. The split depends only on the shape, so results are bitwise identical for
// any thread count.
#include "rill/backend/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "rill/backend/cpu/copy.h"
#include "rill/backend/cpu/strided.h"
#include "rill/backend/cpu/vec_math.h"

namespace rill::cpu {

namespace {

constexpr int64_t kBlock = 4096;

// Partial result of one block: for sum, a = sum; for max, a = max; for logsumexp,
// a = max and b = sum of exp(x - a).
template <class T>
struct Partial {
  T a, b;
};

template <class T>
Partial<T> reduce_block(ReduceOp op, const T* x, int64_t n) {
  if (op == ReduceOp::sum) {
    T acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += x[i];
    return {acc, 0};
  }
  // vec_math: an `omp simd` max over std::max compiles to a serial vmaxss chain, and std::exp
  // to a libm call per element.
  const T m = vec_row_max<T>(x, n);
  if (op == ReduceOp::max) return {m, 0};
  return {m, std::isfinite(m) ? vec_row_sum_exp<T>(x, m, n, nullptr) : T(0)};
}

template <class T>
T combine(ReduceOp op, const Partial<T>* p, int64_t n) {
  if (op == ReduceOp::sum) {
    T acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += p[i].a;
    return acc;
  }
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, p[i].a);
  if (op == ReduceOp::max || !std::isfinite(m)) return m;
  T s = 0;
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(p[i].a)) s += p[i].b * std::exp(p[i].a - m);
  return m + std::log(s);
}

// Sum over leading dims of a contiguous x, [R, K] -> [K] (a bias gradient: dy [B, T, D] summed
// to [D]). Moving the reduced dims last would transpose-copy all of x; instead each thread takes
// fixed chunks of kColumns columns and adds the R rows in order, vectorised along the columns.
// Every column is summed in row order whatever the thread count.
constexpr int64_t kColumns = 256;

template <class T>
void sum_leading(const T* x, int64_t r, int64_t k, T* out) {
  const int64_t chunks = (k + kColumns - 1) / kColumns;
#pragma omp parallel for schedule(static) if (r * k > 32768)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kColumns, len = std::min(kColumns, k - begin);
    T acc[kColumns];
    for (int64_t j = 0; j < len; ++j) acc[j] = 0;
    for (int64_t i = 0; i < r; ++i) {
      const T* row = x + i * k + begin;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) acc[j] += row[j];
    }
    for (int64_t j = 0; j < len; ++j) out[begin + j] = acc[j];
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out) {
  // Leading dims of a contiguous tensor summed, many columns kept: the column-chunk path.
  bool leading = op == ReduceOp::sum && x.is_contiguous() && out.is_contiguous() && !dims.empty();
  for (size_t i = 0; i < dims.size() && leading; ++i) leading = dims[i] == int64_t(i);
  if (leading) {
    int64_t r = 1;
    for (int64_t d : dims) r *= x.shape()[d];
    const int64_t k = r == 0 ? 0 : x.numel() / r;
    if (r > 0 && k >= 64) {
      RILL_DISPATCH_FLOAT(x.dtype(), "reduce", T,
                          sum_leading<T>(static_cast<const T*>(x.data_ptr()), r, k,
                                         static_cast<T*>(out.data_ptr())));
      return;
    }
  }
  // Move the reduced dims last: [kept..., reduced...].
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), d)) perm.push_back(d);
  for (int64_t d : dims) perm.push_back(d);
  Shape pshape, pstrides;
  for (int64_t d : perm) pshape.push_back(x.shape()[d]), pstrides.push_back(x.strides()[d]);
  Tensor xp = make_view(x, pshape, pstrides, x.offset());
  if (!xp.is_contiguous()) {
    Tensor c = Tensor::empty(pshape, x.dtype());
    copy(xp, c);
    xp = c;
  }
  int64_t r = 1;
  for (int64_t d : dims) r *= x.shape()[d];
  const int64_t rows = r == 0 ? numel(out.shape()) : x.numel() / std::max<int64_t>(r, 1);
  const int64_t nblocks = std::max<int64_t>(1, (r + kBlock - 1) / kBlock);
  RILL_DISPATCH_FLOAT(x.dtype(), "reduce", T, {
    const T* src = static_cast<const T*>(xp.data_ptr());
    std::vector<Partial<T>> partials(rows * nblocks);
    // clang-format off
_Pragma("omp parallel for schedule(static) if (rows * r > 32768)")
    for (int64_t u = 0; u < rows * nblocks; ++u) {
      // clang-format on
      int64_t row = u / nblocks, blk = u % nblocks;
      int64_t begin = blk * kBlock, len = std::min(kBlock, r - begin);
      partials[u] = reduce_block<T>(op, src + row * r + begin, std::max<int64_t>(len, 0));
    }
    // out is keepdim-shaped; its kept dims follow x's order, so a row-major walk matches rows.
    Tensor result = Tensor::empty(out.shape(), out.dtype());
    T* res = result.data<T>();
    for (int64_t row = 0; row < rows; ++row)
      res[row] = combine<T>(op, partials.data() + row * nblocks, nblocks);
    copy(result, out);
  });
}

}  // namespace rill::cpu
