// Scan ops: validate, dispatch, record. cumsum's backward is the opposite-direction cumsum;
// logcumsumexp saves x and y and runs a fused backward kernel.
#include "rill/ops/scan.h"

#include "rill/backend/cpu/scan.h"
#include "rill/backend/ref/scan.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

struct CumsumBackward : Node {
  int64_t dim;
  bool reverse;
  CumsumBackward(int64_t d, bool r) : dim(d), reverse(r) {}
  const char* name() const override { return "cumsum"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    // d/dx_i of sum_j dy_j y_j collects dy_j over every j whose scan includes i.
    return {cumsum(g[0], dim, !reverse)};
  }
};

struct LogcumsumexpBackward : Node {
  Tensor x, y;
  int64_t dim;
  bool reverse;
  LogcumsumexpBackward(Tensor x, Tensor y, int64_t d, bool r)
      : x(std::move(x)), y(std::move(y)), dim(d), reverse(r) {}
  const char* name() const override { return "logcumsumexp"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dx = new_output(x.shape(), x.dtype());
    RILL_KERNEL(logcumsumexp_backward, x, y, g[0], dim, reverse, dx);
    return {dx};
  }
};

}  // namespace

Tensor cumsum(const Tensor& x, int64_t dim_in, bool reverse) {
  check_defined("cumsum", x);
  const int64_t dim = normalize_dim(dim_in, x.dim(), "cumsum");
  Tensor y = new_output(x.shape(), x.dtype());
  RILL_KERNEL(cumsum, x, dim, reverse, y);
  if (should_record({&x})) record(std::make_shared<CumsumBackward>(dim, reverse), {&x}, {&y});
  return y;
}

Tensor logcumsumexp(const Tensor& x, int64_t dim_in, bool reverse) {
  check_floating("logcumsumexp", x);
  const int64_t dim = normalize_dim(dim_in, x.dim(), "logcumsumexp");
  Tensor y = new_output(x.shape(), x.dtype());
  RILL_KERNEL(logcumsumexp, x, dim, reverse, y);
  if (should_record({&x}))
    record(std::make_shared<LogcumsumexpBackward>(x.detach(), y.detach(), dim, reverse), {&x},
           {&y});
  return y;
}

}  // namespace rill
