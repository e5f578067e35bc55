// Batched matmul on cpu::gemm. Each matrix operand is handed to gemm as it lies when one of its
// two matrix dims has unit stride (row-major, or column-major via the trans flag); otherwise it
// is copied compactly first (broadcast batch dims stay broadcast, never materialised).
// A batch against one shared right-hand matrix (x[B, T, K] x w[K, N]) becomes a single GEMM of
// B*T rows. Other batches are spread over OpenMP threads, one single-threaded GEMM per matrix,
// when the matrices are small or divide evenly among the threads; otherwise they run one after
// another, each GEMM on the whole pool. The choice depends only on the shapes and the thread
// count, so results are bitwise repeatable for a given thread count.
#include "rill/backend/cpu/matmul.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <vector>

#include "rill/backend/cpu/copy.h"
#include "rill/backend/cpu/gemm.h"
#include "rill/backend/cpu/strided.h"

namespace rill::cpu {

namespace {

// Below this many multiply-adds per matrix, threads take whole matrices rather than sharing one
// even when the batch splits unevenly. Measured here (2 threads, 64 matrices): spread over
// threads 148/306/386/384 GFLOP/s at 32/64/128/256, against 110/80/264/346 with each GEMM
// threaded in turn.
constexpr int64_t kSmallGemm = int64_t{128} * 128 * 128;

// How gemm can read a rows x cols matrix with strides (sr, sc), if it can.
struct Layout {
  bool ok = false;
  bool trans = false;  // stored column-major
  int64_t ld = 0;
};

Layout layout_of(int64_t rows, int64_t cols, int64_t sr, int64_t sc) {
  // A dim of size 1 never moves the offset, so its stride is free; ld then only has to be legal.
  if ((cols == 1 || sc == 1) && (rows == 1 || sr >= std::max<int64_t>(1, cols)))
    return {true, false, rows == 1 ? std::max<int64_t>(1, cols) : sr};
  if ((rows == 1 || sr == 1) && (cols == 1 || sc >= std::max<int64_t>(1, rows)))
    return {true, true, cols == 1 ? std::max<int64_t>(1, rows) : sc};
  return {};
}

Layout layout_of(const Tensor& t) {
  return layout_of(t.size(-2), t.size(-1), t.stride(-2), t.stride(-1));
}

// A copy of t whose matrices are contiguous row-major; batch dims of stride 0 stay stride 0.
Tensor compact(const Tensor& t) {
  const int64_t r = t.dim();
  Shape s = t.shape(), st = t.strides();
  for (int64_t d = 0; d < r - 2; ++d)
    if (st[d] == 0) s[d] = 1;
  Tensor dst = Tensor::empty(s, t.dtype());
  copy(make_view(t, s, st, t.offset()), dst);
  Shape dst_st = dst.strides();
  for (int64_t d = 0; d < r - 2; ++d)
    if (s[d] != t.shape()[d]) dst_st[d] = 0;
  return make_view(dst, t.shape(), dst_st, 0);
}

// True when the batch dims and the row dim of t walk rows at one constant stride `ld`, so that
// all its matrices form a single (batch * rows) x cols matrix.
bool rows_fold(const Tensor& t, int64_t ld) {
  int64_t expected = ld * t.size(-2);
  for (int64_t d = t.dim() - 3; d >= 0; --d) {
    if (t.shape()[d] == 1) continue;
    if (t.strides()[d] != expected) return false;
    expected *= t.shape()[d];
  }
  return true;
}

bool broadcast_over_batch(const Tensor& t) {
  for (int64_t d = 0; d < t.dim() - 2; ++d)
    if (t.shape()[d] != 1 && t.strides()[d] != 0) return false;
  return true;
}

// Element offsets of every batch matrix of t, in row-major batch order.
std::vector<int64_t> batch_offsets(const Tensor& t, int64_t nb) {
  const int64_t r = t.dim() - 2;
  std::vector<int64_t> offs(nb);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t rem = i, off = t.offset();
    for (int64_t d = r - 1; d >= 0; --d) {
      off += (rem % t.shape()[d]) * t.strides()[d];
      rem /= t.shape()[d];
    }
    offs[i] = off;
  }
  return offs;
}

// a, b and c already have gemm-readable matrix layouts la, lb and lc (c row-major).
template <class T>
void run(const Tensor& a, Layout la, const Tensor& b, Layout lb, const Tensor& c, Layout lc) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const int64_t nb = numel(Shape(c.shape().begin(), c.shape().end() - 2));
  const T* ap = base_ptr<T>(a);
  const T* bp = base_ptr<T>(b);
  T* cp = base_ptr<T>(c);
  if (nb == 1 ||
      (!la.trans && broadcast_over_batch(b) && rows_fold(a, la.ld) && rows_fold(c, lc.ld))) {
    // One GEMM: either a single matrix, or every batch's rows stacked against a shared b.
    gemm(la.trans, lb.trans, nb * m, n, k, T(1), ap + a.offset(), la.ld, bp + b.offset(), lb.ld,
         T(0), cp + c.offset(), lc.ld);
    return;
  }
  const std::vector<int64_t> ao = batch_offsets(a, nb), bo = batch_offsets(b, nb),
                             co = batch_offsets(c, nb);
  auto one = [&](int64_t i) {
    gemm(la.trans, lb.trans, m, n, k, T(1), ap + ao[i], la.ld, bp + bo[i], lb.ld, T(0), cp + co[i],
         lc.ld);
  };
  // Whole matrices per thread when they are small (a shared GEMM would mostly synchronise) or
  // when they split evenly over the threads (at most a quarter of the thread time left idle).
  const int64_t nthreads = omp_get_max_threads();
  const int64_t rounds = (nb + nthreads - 1) / nthreads;
  const bool balanced = rounds * nthreads * 4 <= nb * 5;
  if (nthreads > 1 && !omp_in_parallel() && nb >= nthreads &&
      (m * n * k <= kSmallGemm || balanced)) {
    // Inside this region both providers see omp_in_parallel() and run single-threaded. An
    // exception must not leave the region (that terminates), so the first one is carried out.
    std::exception_ptr error;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nb; ++i) {
      try {
        one(i);
      } catch (...) {
#pragma omp critical(rill_matmul_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  } else {
    for (int64_t i = 0; i < nb; ++i) one(i);
  }
}

}  // namespace

void matmul(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  if (out.numel() == 0) return;
  if (a_in.size(-1) == 0) return fill(out, 0.0);  // empty contraction
  Tensor a = a_in, b = b_in, c = out;
  Layout la = layout_of(a), lb = layout_of(b), lc = layout_of(c);
  if (!la.ok) a = compact(a), la = layout_of(a);
  if (!lb.ok) b = compact(b), lb = layout_of(b);
  if (!lc.ok || lc.trans) c = Tensor::empty(out.shape(), out.dtype()), lc = layout_of(c);
  RILL_DISPATCH_FLOAT(out.dtype(), "matmul", T, run<T>(a, la, b, lb, c, lc));
  if (!c.is_same(out)) copy(c, out);
}

}  // namespace rill::cpu
