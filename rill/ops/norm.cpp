// LayerNorm and RMSNorm ops: validate, run the fused kernels on a contiguous [rows, D] layout,
// and record a backward that recomputes xhat from the saved per-row statistics.
#include "rill/ops/norm.h"

#include <cmath>

#include "rill/backend/cpu/norm.h"
#include "rill/backend/ref/norm.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

void check_input(const char* op, const Tensor& x, double eps) {
  check_floating(op, x);
  RILL_CHECK(x.dim() >= 1 && x.size(-1) > 0, "[{}] x {} needs a non-empty last dim to normalise",
             op, shape_str(x.shape()));
  RILL_CHECK(std::isfinite(eps) && eps >= 0, "[{}] eps must be finite and >= 0, got {} (x {})", op,
             eps, shape_str(x.shape()));
}

// weight or bias: undefined, or [D] with x's dtype.
void check_param(const char* op, const char* what, const Tensor& p, const Tensor& x) {
  if (!p.defined()) return;
  RILL_CHECK(p.dim() == 1 && p.size(0) == x.size(-1), "[{}] {} {} must be [{}] for x {}", op, what,
             shape_str(p.shape()), x.size(-1), shape_str(x.shape()));
  RILL_CHECK(p.dtype() == x.dtype(), "[{}] {} is {} {} but x is {} {}", op, what,
             dtype_name(p.dtype()), shape_str(p.shape()), dtype_name(x.dtype()),
             shape_str(x.shape()));
}

// A detached contiguous copy (or view) of t reshaped to `shape`; undefined stays undefined.
Tensor plain(const Tensor& t, const Shape& shape) {
  return t.defined() ? t.detach().contiguous().view(shape) : Tensor();
}

// A fresh output when its gradient is needed, else undefined (the kernel then skips it).
Tensor maybe_output(bool needed, const Shape& shape, DType dtype) {
  return needed ? new_output(shape, dtype) : Tensor();
}

struct LayerNormBackward : Node {
  Tensor x;           // [rows, D], contiguous
  Tensor weight;      // [D] or undefined
  Tensor mean, rstd;  // [rows]
  Shape shape;        // the caller's x shape
  LayerNormBackward(Tensor x, Tensor w, Tensor m, Tensor r, Shape s)
      : x(std::move(x)),
        weight(std::move(w)),
        mean(std::move(m)),
        rstd(std::move(r)),
        shape(std::move(s)) {}
  const char* name() const override { return "layer_norm"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dy = plain(g[0], x.shape());
    Tensor dx = maybe_output(needs_grad(0), x.shape(), x.dtype());
    Tensor dw = maybe_output(needs_grad(1), {x.size(1)}, x.dtype());
    Tensor db = maybe_output(needs_grad(2), {x.size(1)}, x.dtype());
    RILL_KERNEL(layer_norm_backward, x, weight, mean, rstd, dy, dx, dw, db);
    return {dx.defined() ? dx.view(shape) : dx, dw, db};
  }
};

struct RmsNormBackward : Node {
  Tensor x;       // [rows, D], contiguous
  Tensor weight;  // [D] or undefined
  Tensor rstd;    // [rows]
  Shape shape;    // the caller's x shape
  RmsNormBackward(Tensor x, Tensor w, Tensor r, Shape s)
      : x(std::move(x)), weight(std::move(w)), rstd(std::move(r)), shape(std::move(s)) {}
  const char* name() const override { return "rms_norm"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dy = plain(g[0], x.shape());
    Tensor dx = maybe_output(needs_grad(0), x.shape(), x.dtype());
    Tensor dw = maybe_output(needs_grad(1), {x.size(1)}, x.dtype());
    RILL_KERNEL(rms_norm_backward, x, weight, rstd, dy, dx, dw);
    return {dx.defined() ? dx.view(shape) : dx, dw};
  }
};

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  check_input("layer_norm", x, eps);
  check_param("layer_norm", "weight", weight, x);
  check_param("layer_norm", "bias", bias, x);
  const int64_t d = x.size(-1), rows = x.numel() / d;
  Tensor xc = plain(x, {rows, d});
  Tensor wc = plain(weight, {d}), bc = plain(bias, {d});
  Tensor y = new_output(x.shape(), x.dtype());
  Tensor mean = new_output({rows}, x.dtype()), rstd = new_output({rows}, x.dtype());
  RILL_KERNEL(layer_norm_forward, xc, wc, bc, eps, y.view({rows, d}), mean, rstd);
  if (should_record({&x, &weight, &bias}))
    record(std::make_shared<LayerNormBackward>(xc, wc, mean, rstd, x.shape()), {&x, &weight, &bias},
           {&y});
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_input("rms_norm", x, eps);
  check_param("rms_norm", "weight", weight, x);
  const int64_t d = x.size(-1), rows = x.numel() / d;
  Tensor xc = plain(x, {rows, d});
  Tensor wc = plain(weight, {d});
  Tensor y = new_output(x.shape(), x.dtype());
  Tensor rstd = new_output({rows}, x.dtype());
  RILL_KERNEL(rms_norm_forward, xc, wc, eps, y.view({rows, d}), rstd);
  if (should_record({&x, &weight}))
    record(std::make_shared<RmsNormBackward>(xc, wc, rstd, x.shape()), {&x, &weight}, {&y});
  return y;
}

}  // namespace rill
