// Parallel copy (with dtype conversion) and fill over the innermost runs of a strided view;
// dense runs of one dtype go through memcpy.

#include "rill/backend/cpu/copy.h"

#include <cstring>

#include "rill/backend/cpu/strided.h"

namespace rill::cpu {

void copy(const Tensor& src, const Tensor& dst) {
  RILL_DISPATCH_ALL(src.dtype(), "copy", S, {
    RILL_DISPATCH_ALL(dst.dtype(), "copy", D, {
      const S* s = base_ptr<S>(src);
      D* d = base_ptr<D>(dst);
      parallel_runs<2>(dst.shape(), {&src, &dst}, [&](auto off, auto st, int64_t n) {
        const S* sp = s + off[0];
        D* dp = d + off[1];
        if constexpr (std::is_same_v<S, D>) {
          if (st[0] == 1 && st[1] == 1) {
            std::memcpy(dp, sp, n * sizeof(D));
            return;
          }
        }
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<D>(sp[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) dp[i * st[1]] = static_cast<D>(sp[i * st[0]]);
        }
      });
    });
  });
}

void fill(const Tensor& dst, double value) {
  RILL_DISPATCH_ALL(dst.dtype(), "fill", D, {
    D* d = base_ptr<D>(dst);
    const D v = static_cast<D>(value);
    parallel_runs<1>(dst.shape(), {&dst}, [&](auto off, auto st, int64_t n) {
      D* dp = d + off[0];
      if (st[0] == 1) {
        for (int64_t i = 0; i < n; ++i) dp[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = v;
      }
    });
  });
}

}  // namespace rill::cpu
