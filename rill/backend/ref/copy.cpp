// Reference copy and fill: one strided loop, element by element, the oracle for the cpu kernels.

#include "rill/backend/ref/copy.h"

#include "rill/backend/ref/strided.h"

namespace rill::ref {

void copy(const Tensor& src, const Tensor& dst) {
  RILL_DISPATCH_ALL(src.dtype(), "copy", S, {
    RILL_DISPATCH_ALL(dst.dtype(), "copy", D, {
      S* s = base_ptr<S>(src);
      D* d = base_ptr<D>(dst);
      for_each_offset<2>(dst.shape(), {&src, &dst},
                         [&](auto off) { d[off[1]] = static_cast<D>(s[off[0]]); });
    });
  });
}

void fill(const Tensor& dst, double value) {
  RILL_DISPATCH_ALL(dst.dtype(), "fill", D, {
    D* d = base_ptr<D>(dst);
    for_each_offset<1>(dst.shape(), {&dst}, [&](auto off) { d[off[0]] = static_cast<D>(value); });
  });
}

}  // namespace rill::ref
