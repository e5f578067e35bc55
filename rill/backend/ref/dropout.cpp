// Reference dropout: one pass in row-major order, drawing each element's mask on the spot.
#include "rill/backend/ref/dropout.h"

#include "rill/backend/ref/strided.h"

namespace rill::ref {

namespace {

template <class T>
void dropout_impl(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out) {
  const T* xp = base_ptr<T>(x);
  T* op = base_ptr<T>(out);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  uint64_t i = 0;  // row-major index: for_each_offset visits elements in that order
  for_each_offset<2>(x.shape(), {&x, &out}, [&](auto f) {
    op[f[1]] = dropout_keep(seed, offset + i, p) ? xp[f[0]] * scale : T(0);
    ++i;
  });
}

}  // namespace

void dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out) {
  RILL_DISPATCH_FLOAT(x.dtype(), "dropout", T, dropout_impl<T>(x, p, seed, offset, out));
}

}  // namespace rill::ref
