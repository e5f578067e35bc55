// matmul: validate shapes, broadcast the batch dims, dispatch, record. Backward is written with
// matmul itself (transposes are views that reach gemm as trans flags): da = dc x b^T and
// db = a^T x dc, each summed over the batch dims its operand was broadcast along.
#include "rill/ops/matmul.h"

#include "rill/backend/cpu/matmul.h"
#include "rill/backend/ref/matmul.h"
#include "rill/ops/op_util.h"
#include "rill/ops/reduce.h"

namespace rill {

namespace {

Shape batch_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

Shape with_matrix(Shape batch, int64_t rows, int64_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return batch;
}

Tensor matmul_nd(const Tensor& a, const Tensor& b);

struct MatmulBackward : Node {
  Tensor a, b;  // [..., M, K] and [..., K, N], before broadcasting
  MatmulBackward(Tensor a, Tensor b) : a(std::move(a)), b(std::move(b)) {}
  const char* name() const override { return "matmul"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    const Tensor& dc = g[0];  // [batch..., M, N]
    Tensor da, db;
    if (needs_grad(0)) da = sum_to(matmul_nd(dc, b.transpose(-1, -2)), a.shape());
    if (needs_grad(1)) {
      const int64_t nb = numel(batch_of(dc));
      if (nb > 1 && numel(batch_of(b)) == 1) {
        // b is shared by every batch (x[B, T, K] x w[K, N]): one GEMM contracting over all
        // batch rows, instead of a [batch..., K, N] temporary that is then summed.
        const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
        Tensor a2 = a.reshape({nb * m, k}), dc2 = dc.reshape({nb * m, n});
        db = matmul_nd(a2.transpose(0, 1), dc2).reshape(b.shape());
      } else {
        db = sum_to(matmul_nd(a.transpose(-1, -2), dc), b.shape());
      }
    }
    return {da, db};
  }
};

// Both operands of rank >= 2 and already validated.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const Shape batch = broadcast_shapes(batch_of(a), batch_of(b), "matmul");
  Tensor out = new_output(with_matrix(batch, m, n), a.dtype());
  RILL_KERNEL(matmul, expand_view(a, with_matrix(batch, m, k), "matmul"),
              expand_view(b, with_matrix(batch, k, n), "matmul"), out);
  if (should_record({&a, &b}))
    record(std::make_shared<MatmulBackward>(a.detach(), b.detach()), {&a, &b}, {&out});
  return out;
}

void validate(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a, "a");
  check_defined("matmul", b, "b");
  // Shapes are formatted only on failure: this runs on every call.
  auto as = [&] { return shape_str(a.shape()); };
  auto bs = [&] { return shape_str(b.shape()); };
  RILL_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()),
             "[matmul] expects floating tensors (f32 or f64), got {} {} and {} {}",
             dtype_name(a.dtype()), as(), dtype_name(b.dtype()), bs());
  check_same_dtype("matmul", a, b);
  RILL_CHECK(a.dim() >= 1 && b.dim() >= 1, "[matmul] operands must have rank >= 1, got {} and {}",
             as(), bs());
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  RILL_CHECK(ka == kb, "[matmul] inner dims differ ({} vs {}): {} and {}", ka, kb, as(), bs());
  if (a.dim() > 2 || b.dim() > 2) {
    const Shape ba = a.dim() > 2 ? batch_of(a) : Shape{};
    const Shape bb = b.dim() > 2 ? batch_of(b) : Shape{};
    const size_t r = std::max(ba.size(), bb.size());
    for (size_t i = 0; i < r; ++i) {
      const int64_t da = i < r - ba.size() ? 1 : ba[i - (r - ba.size())];
      const int64_t db = i < r - bb.size() ? 1 : bb[i - (r - bb.size())];
      RILL_CHECK(da == db || da == 1 || db == 1,
                 "[matmul] batch dims {} and {} do not broadcast: {} and {}", shape_str(ba),
                 shape_str(bb), as(), bs());
    }
  }
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  validate(a, b);
  if (a.dim() >= 2 && b.dim() >= 2) return matmul_nd(a, b);
  // Rank-1 operands become a one-row / one-column matrix, and that dim is removed again.
  Tensor c = matmul_nd(a.dim() == 1 ? a.unsqueeze(0) : a, b.dim() == 1 ? b.unsqueeze(1) : b);
  if (b.dim() == 1) c = c.squeeze(-1);
  if (a.dim() == 1) c = c.squeeze(b.dim() == 1 ? -1 : -2);
  return c;
}

}  // namespace rill
