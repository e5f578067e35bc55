// Reference reductions (sum, mean, max, logsumexp) over any set of dims: plain loops, the oracle.

#include "rill/backend/ref/reduce.h"

#include <cmath>
#include <limits>

#include "rill/backend/ref/strided.h"

namespace rill::ref {

void reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out) {
  // Viewing out with stride 0 along the reduced dims maps every x index onto its output slot.
  Shape st = out.strides();
  for (int64_t d : dims) st[d] = 0;
  Tensor o = make_view(out, x.shape(), st, out.offset());
  RILL_DISPATCH_FLOAT(x.dtype(), "reduce", T, {
    const T* xp = base_ptr<T>(x);
    T* outp = base_ptr<T>(out);
    const Tensor& oc = out;
    if (op == ReduceOp::sum) {
      for_each_offset<1>(oc.shape(), {&oc}, [&](auto f) { outp[f[0]] = T(0); });
      for_each_offset<2>(x.shape(), {&x, &o}, [&](auto f) { outp[f[1]] += xp[f[0]]; });
    } else {
      for_each_offset<1>(oc.shape(), {&oc},
                         [&](auto f) { outp[f[0]] = -std::numeric_limits<T>::infinity(); });
      for_each_offset<2>(x.shape(), {&x, &o},
                         [&](auto f) { outp[f[1]] = std::max(outp[f[1]], xp[f[0]]); });
      if (op == ReduceOp::logsumexp) {
        Tensor m = Tensor::empty(out.shape(), out.dtype());
        Tensor s = Tensor::zeros(out.shape(), out.dtype());
        T* mp = m.data<T>();
        T* sp = s.data<T>();
        Tensor mv = make_view(
            m, x.shape(),
            [&] {
              Shape ms = m.strides();
              for (int64_t d : dims) ms[d] = 0;
              return ms;
            }(),
            0);
        Tensor sv = make_view(s, x.shape(), mv.strides(), 0);
        for_each_offset<2>(oc.shape(), {&oc, &m}, [&](auto f) { mp[f[1]] = outp[f[0]]; });
        for_each_offset<3>(x.shape(), {&x, &mv, &sv}, [&](auto f) {
          T mx = mp[f[1]];
          if (std::isfinite(mx)) sp[f[2]] += std::exp(xp[f[0]] - mx);
        });
        for_each_offset<3>(oc.shape(), {&oc, &m, &s}, [&](auto f) {
          T mx = mp[f[1]];
          outp[f[0]] = std::isfinite(mx) ? mx + std::log(sp[f[2]]) : mx;
        });
      }
    }
  });
}

}  // namespace rill::ref
