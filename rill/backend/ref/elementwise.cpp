// Reference elementwise kernels: unary ops and their backward, broadcasting binary ops, where;
// plain loops over strided indices using libm, the oracle for the vectorised cpu kernels.

#include "rill/backend/ref/elementwise.h"

#include "rill/backend/ref/strided.h"

namespace rill::ref {

void unary(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& out) {
  RILL_DISPATCH_FLOAT(x.dtype(), unary_name(op), T, {
    const T* xp = base_ptr<T>(x);
    T* op_ = base_ptr<T>(out);
    RILL_SWITCH_UNARY(op, OP, {
      for_each_offset<2>(out.shape(), {&x, &out},
                         [&](auto o) { op_[o[1]] = unary_forward<OP, T>(xp[o[0]], p); });
    });
  });
}

void unary_backward(UnaryOp op, const UnaryParams& p, const Tensor& x, const Tensor& y,
                    const Tensor& dy, const Tensor& dx) {
  RILL_DISPATCH_FLOAT(x.dtype(), unary_name(op), T, {
    const T* xp = base_ptr<T>(x);
    const T* yp = base_ptr<T>(y);
    const T* gp = base_ptr<T>(dy);
    T* dp = base_ptr<T>(dx);
    RILL_SWITCH_UNARY(op, OP, {
      for_each_offset<4>(dx.shape(), {&x, &y, &dy, &dx}, [&](auto o) {
        dp[o[3]] = gp[o[2]] * unary_derivative<OP, T>(xp[o[0]], yp[o[1]], p);
      });
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  RILL_DISPATCH_ALL(out.dtype(), binary_name(op), T, {
    const T* ap = base_ptr<T>(a);
    const T* bp = base_ptr<T>(b);
    T* op_ = base_ptr<T>(out);
    RILL_SWITCH_BINARY(op, OP, {
      for_each_offset<3>(out.shape(), {&a, &b, &out},
                         [&](auto o) { op_[o[2]] = binary_forward<OP, T>(ap[o[0]], bp[o[1]]); });
    });
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  RILL_DISPATCH_ALL(cond.dtype(), "where", C, {
    RILL_DISPATCH_ALL(out.dtype(), "where", T, {
      const C* cp = base_ptr<C>(cond);
      const T* ap = base_ptr<T>(a);
      const T* bp = base_ptr<T>(b);
      T* op_ = base_ptr<T>(out);
      for_each_offset<4>(out.shape(), {&cond, &a, &b, &out},
                         [&](auto o) { op_[o[3]] = cp[o[0]] != C(0) ? ap[o[1]] : bp[o[2]]; });
    });
  });
}

}  // namespace rill::ref
