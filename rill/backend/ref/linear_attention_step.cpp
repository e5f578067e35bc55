#include "rill/backend/ref/linear_attention_step.h"

namespace rill::ref {

void linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                           const Tensor& out) {
  const int64_t bh = q.size(0) * q.size(1), dk = q.size(2), dv = v.size(2);
  RILL_DISPATCH_FLOAT(q.dtype(), "linear_attention_step", T, {
    const T* qp = q.data<T>();
    const T* kp = k.data<T>();
    const T* vp = v.data<T>();
    T* sp = s.data<T>();
    T* op = out.data<T>();
    for (int64_t n = 0; n < bh; ++n)
      for (int64_t j = 0; j < dv; ++j) {
        T acc = 0;
        for (int64_t i = 0; i < dk; ++i) {
          T& sij = sp[(n * dk + i) * dv + j];
          sij += kp[n * dk + i] * vp[n * dv + j];
          acc += sij * qp[n * dk + i];
        }
        op[n * dv + j] = acc;
      }
  });
}

}  // namespace rill::ref
