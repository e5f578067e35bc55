// Each kernel switches on the op once, outside the loop, so the inner loop is a plain
// contiguous (or constant-stride) loop the compiler can vectorise. Ops that call exp / log /
// tanh / erf per element go to vec_math's kernels (glibc libmvec) instead: libm calls do not
// vectorise.
#include "rill/backend/cpu/elementwise.h"

#include <algorithm>

#include "rill/backend/cpu/strided.h"
#include "rill/backend/cpu/vec_math.h"

namespace rill::cpu {

namespace {

// Strided runs are gathered into a small contiguous buffer (on the stack, in L1), run through the
// vector kernel there and scattered back.
constexpr int64_t kGatherBlock = 256;

template <class T>
void vec_unary_strided(UnaryOp op, const UnaryParams& p, const T* x, int64_t sx, T* y, int64_t sy,
                       int64_t n) {
  if (sx == 1 && sy == 1) return vec_unary<T>(op, p, x, y, n);
  T buf[kGatherBlock];
  for (int64_t b = 0; b < n; b += kGatherBlock) {
    const int64_t m = std::min(kGatherBlock, n - b);
    for (int64_t i = 0; i < m; ++i) buf[i] = x[(b + i) * sx];
    vec_unary<T>(op, p, buf, buf, m);
    for (int64_t i = 0; i < m; ++i) y[(b + i) * sy] = buf[i];
  }
}

template <class T>
void vec_unary_backward_strided(UnaryOp op, const UnaryParams& p, const T* x, int64_t sx,
                                const T* g, int64_t sg, T* dx, int64_t sd, int64_t n) {
  if (sx == 1 && sg == 1 && sd == 1) return vec_unary_backward<T>(op, p, x, g, dx, n);
  T xb[kGatherBlock], gb[kGatherBlock];
  for (int64_t b = 0; b < n; b += kGatherBlock) {
    const int64_t m = std::min(kGatherBlock, n - b);
    for (int64_t i = 0; i < m; ++i) {
      xb[i] = x[(b + i) * sx];
      gb[i] = g[(b + i) * sg];
    }
    vec_unary_backward<T>(op, p, xb, gb, gb, m);
    for (int64_t i = 0; i < m; ++i) dx[(b + i) * sd] = gb[i];
  }
}

}  // namespace

void unary(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& out) {
  RILL_DISPATCH_FLOAT(x.dtype(), unary_name(op), T, {
    const T* xb = base_ptr<T>(x);
    T* ob = base_ptr<T>(out);
    if (vec_has_unary(op)) {
      parallel_runs<2>(out.shape(), {&x, &out}, [&](auto off, auto st, int64_t n) {
        vec_unary_strided<T>(op, p, xb + off[0], st[0], ob + off[1], st[1], n);
      });
      return;
    }
    RILL_SWITCH_UNARY(op, OP, {
      parallel_runs<2>(out.shape(), {&x, &out}, [&](auto off, auto st, int64_t n) {
        const T* xp = xb + off[0];
        T* yp = ob + off[1];
        if (st[0] == 1 && st[1] == 1) {
          // clang-format off
_Pragma("omp simd")
          for (int64_t i = 0; i < n; ++i) yp[i] = unary_forward<OP, T>(xp[i], p);
          // clang-format on
        } else {
          for (int64_t i = 0; i < n; ++i) yp[i * st[1]] = unary_forward<OP, T>(xp[i * st[0]], p);
        }
      });
    });
  });
}

void unary_backward(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& y,
                    const Tensor& dy, const Tensor& dx) {
  RILL_DISPATCH_FLOAT(x.dtype(), unary_name(op), T, {
    const T* xb = base_ptr<T>(x);
    const T* yb = base_ptr<T>(y);
    const T* gb = base_ptr<T>(dy);
    T* db = base_ptr<T>(dx);
    if (vec_has_unary_backward(op)) {
      parallel_runs<3>(dx.shape(), {&x, &dy, &dx}, [&](auto off, auto st, int64_t n) {
        vec_unary_backward_strided<T>(op, p, xb + off[0], st[0], gb + off[1], st[1], db + off[2],
                                      st[2], n);
      });
      return;
    }
    RILL_SWITCH_UNARY(op, OP, {
      parallel_runs<4>(dx.shape(), {&x, &y, &dy, &dx}, [&](auto off, auto st, int64_t n) {
        const T* xp = xb + off[0];
        const T* yp = yb + off[1];
        const T* gp = gb + off[2];
        T* dp = db + off[3];
        if (st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1) {
          // clang-format off
_Pragma("omp simd")
          for (int64_t i = 0; i < n; ++i) dp[i] = gp[i] * unary_derivative<OP, T>(xp[i], yp[i], p);
          // clang-format on
        } else {
          for (int64_t i = 0; i < n; ++i)
            dp[i * st[3]] =
                gp[i * st[2]] * unary_derivative<OP, T>(xp[i * st[0]], yp[i * st[1]], p);
        }
      });
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  RILL_DISPATCH_ALL(out.dtype(), binary_name(op), T, {
    const T* ab = base_ptr<T>(a);
    const T* bb = base_ptr<T>(b);
    T* ob = base_ptr<T>(out);
    RILL_SWITCH_BINARY(op, OP, {
      parallel_runs<3>(out.shape(), {&a, &b, &out}, [&](auto off, auto st, int64_t n) {
        const T* ap = ab + off[0];
        const T* bp = bb + off[1];
        T* op_ = ob + off[2];
        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
          // clang-format off
_Pragma("omp simd")
          for (int64_t i = 0; i < n; ++i) op_[i] = binary_forward<OP, T>(ap[i], bp[i]);
          // clang-format on
        } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {  // tensor with a broadcast scalar
          const T bv = bp[0];
          // clang-format off
_Pragma("omp simd")
          for (int64_t i = 0; i < n; ++i) op_[i] = binary_forward<OP, T>(ap[i], bv);
          // clang-format on
        } else if (st[0] == 0 && st[1] == 1 && st[2] == 1) {
          const T av = ap[0];
          // clang-format off
_Pragma("omp simd")
          for (int64_t i = 0; i < n; ++i) op_[i] = binary_forward<OP, T>(av, bp[i]);
          // clang-format on
        } else {
          for (int64_t i = 0; i < n; ++i)
            op_[i * st[2]] = binary_forward<OP, T>(ap[i * st[0]], bp[i * st[1]]);
        }
      });
    });
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  RILL_DISPATCH_ALL(cond.dtype(), "where", C, {
    RILL_DISPATCH_ALL(out.dtype(), "where", T, {
      const C* cb = base_ptr<C>(cond);
      const T* ab = base_ptr<T>(a);
      const T* bb = base_ptr<T>(b);
      T* ob = base_ptr<T>(out);
      parallel_runs<4>(out.shape(), {&cond, &a, &b, &out}, [&](auto off, auto st, int64_t n) {
        for (int64_t i = 0; i < n; ++i)
          ob[off[3] + i * st[3]] =
              cb[off[0] + i * st[0]] != C(0) ? ab[off[1] + i * st[1]] : bb[off[2] + i * st[2]];
      });
    });
  });
}

}  // namespace rill::cpu
