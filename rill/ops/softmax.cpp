// Softmax-family ops: validate, move the softmax dim last and lay it out contiguously (so every
// kernel sees plain [rows, C] rows), dispatch, and record the hand-written backward.
#include "rill/ops/softmax.h"

#include "rill/backend/cpu/softmax.h"
#include "rill/backend/ref/softmax.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

// Rows of a [..., C] shape: the product of its leading dims (so C == 0 is fine).
int64_t leading_rows(const Shape& s) { return numel(Shape(s.begin(), s.end() - 1)); }

// A contiguous [rows, C] view of a contiguous tensor, for the kernels.
Tensor as_rows(const Tensor& t) { return t.view({leading_rows(t.shape()), t.size(-1)}); }

// t (detached, so nothing is recorded) with dim d moved last, contiguous.
Tensor dim_last(const Tensor& t, int64_t d) {
  Tensor v = t.detach();
  if (d != v.dim() - 1) v = v.transpose(d, -1);
  return v.contiguous();
}

// The inverse of dim_last for a contiguous result: back to the caller's dim order.
Tensor dim_back(const Tensor& t, int64_t d) {
  if (d == t.dim() - 1) return t;
  return t.transpose(d, -1).contiguous();
}

struct SoftmaxBackward : Node {
  Tensor y;  // the output, softmax dim last, contiguous
  int64_t d;
  bool log;
  SoftmaxBackward(Tensor y, int64_t d, bool log) : y(std::move(y)), d(d), log(log) {}
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dy = dim_last(g[0], d);
    Tensor dx = new_output(y.shape(), y.dtype());
    RILL_KERNEL(softmax_backward, as_rows(y), as_rows(dy), as_rows(dx), log);
    return {dim_back(dx, d)};
  }
};

Tensor softmax_op(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_floating(name, x);
  RILL_CHECK(x.dim() >= 1, "[{}] needs at least one dim, got a scalar {}", name,
             shape_str(x.shape()));
  RILL_CHECK(dim >= -x.dim() && dim < x.dim(), "[{}] dim {} is out of range for x {}", name, dim,
             shape_str(x.shape()));
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  Tensor xl = dim_last(x, d);
  Tensor yl = new_output(xl.shape(), x.dtype());
  RILL_KERNEL(softmax_forward, as_rows(xl), as_rows(yl), log);
  Tensor y = dim_back(yl, d);
  if (should_record({&x}))
    record(std::make_shared<SoftmaxBackward>(yl.detach(), d, log), {&x}, {&y});
  return y;
}

// Checks every target (flattened, contiguous) against [0, C) and counts those not ignored.
int64_t count_targets(const Tensor& target, const Tensor& logits, int64_t ignore_index) {
  const int64_t classes = logits.size(-1);
  int64_t count = 0;
  RILL_DISPATCH_INDEX(target.dtype(), "cross_entropy", I, {
    const I* t = target.data<I>();
    for (int64_t r = 0; r < target.numel(); ++r) {
      const int64_t v = t[r];
      if (v == ignore_index) continue;
      RILL_CHECK(v >= 0 && v < classes,
                 "[cross_entropy] target {} at flat index {} is out of range [0, {}) for "
                 "logits {} (ignore_index is {})",
                 v, r, classes, shape_str(logits.shape()), ignore_index);
      ++count;
    }
  });
  return count;
}

struct CrossEntropyBackward : Node {
  Tensor logits;               // [rows, C], contiguous
  Tensor target;               // [rows], contiguous
  Tensor row_max, row_logsum;  // [rows]: logsumexp = row_max + row_logsum
  int64_t ignore_index, count;
  Shape shape;  // the caller's logits shape
  CrossEntropyBackward(Tensor l, Tensor t, Tensor m, Tensor s, int64_t ignore, int64_t count,
                       Shape shape)
      : logits(std::move(l)),
        target(std::move(t)),
        row_max(std::move(m)),
        row_logsum(std::move(s)),
        ignore_index(ignore),
        count(count),
        shape(std::move(shape)) {}
  const char* name() const override { return "cross_entropy"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dl = new_output(logits.shape(), logits.dtype());
    RILL_KERNEL(cross_entropy_backward, logits, target, row_max, row_logsum, g[0], ignore_index,
                count, dl);
    return {dl.view(shape)};
  }
};

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, false); }

Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, true); }

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index) {
  check_floating("cross_entropy", logits);
  check_defined("cross_entropy", target, "target");
  RILL_CHECK(logits.dim() >= 1, "[cross_entropy] logits must be [..., C], got a scalar {}",
             shape_str(logits.shape()));
  RILL_CHECK(target.dtype() == DType::i32 || target.dtype() == DType::i64,
             "[cross_entropy] target must be i32 or i64 class ids, got {} {} (logits {})",
             dtype_name(target.dtype()), shape_str(target.shape()), shape_str(logits.shape()));
  const Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  RILL_CHECK(target.shape() == lead,
             "[cross_entropy] target {} does not match the leading dims of logits {} "
             "(expected {})",
             shape_str(target.shape()), shape_str(logits.shape()), shape_str(lead));
  const int64_t rows = numel(lead);
  Tensor tc = target.detach().contiguous().view({rows});
  const int64_t count = count_targets(tc, logits, ignore_index);
  Tensor lc = as_rows(logits.detach().contiguous());
  Tensor row_max = new_output({rows}, logits.dtype());
  Tensor row_logsum = new_output({rows}, logits.dtype());
  Tensor loss = new_output({}, logits.dtype());
  RILL_KERNEL(cross_entropy_forward, lc, tc, ignore_index, count, row_max, row_logsum, loss);
  if (should_record({&logits}))
    record(std::make_shared<CrossEntropyBackward>(lc, tc, row_max, row_logsum, ignore_index, count,
                                                  logits.shape()),
           {&logits}, {&loss});
  return loss;
}

}  // namespace rill
