// Clipping by the global gradient norm, accumulated in double in a fixed order.
#include "rill/optim/clip.h"

#include <cmath>

#include "rill/core/error.h"

namespace rill::optim {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  RILL_CHECK(max_norm > 0, "[clip_grad_norm] max_norm must be positive, got {}", max_norm);
  double total = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    RILL_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", T, {
      Tensor c = g.contiguous();
      const T* gp = c.data<T>();
      for (int64_t i = 0; i < c.numel(); ++i) total += double(gp[i]) * gp[i];
    });
  }
  const double norm = std::sqrt(total);
  if (norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);  // as torch: a tiny epsilon keeps it finite
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      RILL_CHECK(g.is_contiguous(), "[clip_grad_norm] gradient is not contiguous");
      RILL_DISPATCH_FLOAT(g.dtype(), "clip_grad_norm", T, {
        T* gp = g.data<T>();
        for (int64_t i = 0; i < g.numel(); ++i) gp[i] = T(gp[i] * scale);
      });
    }
  }
  return norm;
}

}  // namespace rill::optim
