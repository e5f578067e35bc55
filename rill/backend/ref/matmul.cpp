// Reference matmul: for every batch index, out[i][j] = sum_k a[i][k] * b[k][j], accumulated in T
// in order of k. Deliberately unoptimised: it is the oracle.
#include "rill/backend/ref/matmul.h"

#include "rill/backend/ref/strided.h"

namespace rill::ref {

namespace {

// The batch dims of t as a view (its matrix dims dropped), so for_each_offset walks matrices.
Tensor batch_view(const Tensor& t) {
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  return make_view(t, Shape(s.begin(), s.end() - 2), Shape(st.begin(), st.end() - 2), t.offset());
}

}  // namespace

void matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const Tensor ab = batch_view(a), bb = batch_view(b), ob = batch_view(out);
  RILL_DISPATCH_FLOAT(a.dtype(), "matmul", T, {
    const T* ap = base_ptr<T>(a);
    const T* bp = base_ptr<T>(b);
    T* op = base_ptr<T>(out);
    const int64_t as0 = a.stride(-2), as1 = a.stride(-1);
    const int64_t bs0 = b.stride(-2), bs1 = b.stride(-1);
    const int64_t os0 = out.stride(-2), os1 = out.stride(-1);
    for_each_offset<3>(ob.shape(), {&ab, &bb, &ob}, [&](auto off) {
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          T acc = T(0);
          for (int64_t p = 0; p < k; ++p)
            acc += ap[off[0] + i * as0 + p * as1] * bp[off[1] + p * bs0 + j * bs1];
          op[off[2] + i * os0 + j * os1] = acc;
        }
    });
  });
}

}  // namespace rill::ref
