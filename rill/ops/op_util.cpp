// Helpers every op uses: NaN-filled outputs under test, broadcasting views, input checks.
#include "rill/ops/op_util.h"

#include <limits>

#include "rill/backend/cpu/copy.h"
#include "rill/ops/elementwise.h"

namespace rill {

namespace {
bool g_fill_outputs = false;
}

void set_debug_fill_outputs(bool on) { g_fill_outputs = on; }
bool debug_fill_outputs() { return g_fill_outputs; }

Tensor new_output(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  if (g_fill_outputs)
    cpu::fill(t, is_floating(dtype) ? std::numeric_limits<double>::quiet_NaN() : -123456789.0);
  return t;
}

Tensor expand_view(const Tensor& t, const Shape& shape, const char* op) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t lead = rank - t.dim();
  RILL_CHECK(lead >= 0, "[{}] cannot broadcast {} to {}", op, shape_str(t.shape()),
             shape_str(shape));
  Shape strides(rank, 0);
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.shape()[d] == shape[d + lead]) {
      strides[d + lead] = t.strides()[d];
    } else {
      RILL_CHECK(t.shape()[d] == 1, "[{}] cannot broadcast {} to {}", op, shape_str(t.shape()),
                 shape_str(shape));
    }
  }
  return make_view(t, shape, strides, t.offset());
}

void check_defined(const char* op, const Tensor& t, const char* what) {
  RILL_CHECK(t.defined(), "[{}] {} is an undefined tensor", op, what);
}

void check_floating(const char* op, const Tensor& t) {
  check_defined(op, t);
  RILL_CHECK(is_floating(t.dtype()), "[{}] expects a floating tensor (f32 or f64), got {} {}", op,
             dtype_name(t.dtype()), shape_str(t.shape()));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  check_defined(op, a);
  check_defined(op, b);
  RILL_CHECK(a.dtype() == b.dtype(), "[{}] dtypes differ: {} {} and {} {}", op,
             dtype_name(a.dtype()), shape_str(a.shape()), dtype_name(b.dtype()),
             shape_str(b.shape()));
}

void check_index_dtype(const char* op, const Tensor& idx) {
  check_defined(op, idx, "index");
  RILL_CHECK(idx.dtype() == DType::i32 || idx.dtype() == DType::i64,
             "[{}] index must be i32 or i64, got {} {}", op, dtype_name(idx.dtype()),
             shape_str(idx.shape()));
}

Tensor nonzero_mask(const Tensor& t, DType dtype) {
  return add(neg(eq(t.detach().to(dtype), Tensor::scalar(0.0, dtype))), 1.0);
}

Tensor flat_resets(const Tensor& resets, int64_t heads, DType dtype) {
  if (!resets.defined()) return resets;
  const int64_t b = resets.size(0), len = resets.size(1);
  return nonzero_mask(resets, dtype)
      .unsqueeze(1)
      .expand({b, heads, len})
      .contiguous()
      .view({b * heads, len});
}

}  // namespace rill
