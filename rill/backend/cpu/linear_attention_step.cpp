// Rows of S are contiguous over Dv, so both the rank-1 update and the read-out are vector
// operations along Dv; one pass over S does both (S is read and written once per token).
#include "rill/backend/cpu/linear_attention_step.h"

namespace rill::cpu {

void linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                           const Tensor& out) {
  const int64_t bh = q.size(0) * q.size(1), dk = q.size(2), dv = v.size(2);
  RILL_DISPATCH_FLOAT(q.dtype(), "linear_attention_step", T, {
    const T* qp = q.data<T>();
    const T* kp = k.data<T>();
    const T* vp = v.data<T>();
    T* sp = s.data<T>();
    T* op = out.data<T>();
    _Pragma("omp parallel for schedule(static) if (bh * dk * dv > 65536)")
    for (int64_t n = 0; n < bh; ++n) {
      T* o = op + n * dv;
      const T* vr = vp + n * dv;
      for (int64_t j = 0; j < dv; ++j) o[j] = 0;
      for (int64_t i = 0; i < dk; ++i) {
        T* row = sp + (n * dk + i) * dv;
        const T ki = kp[n * dk + i], qi = qp[n * dk + i];
        _Pragma("omp simd")
        for (int64_t j = 0; j < dv; ++j) {
          row[j] += ki * vr[j];
          o[j] += row[j] * qi;
        }
      }
    }
  });
}

}  // namespace rill::cpu
