#include "rill/nn/norm.h"

#include "rill/ops/norm.h"

namespace rill::nn {

LayerNorm::LayerNorm(int64_t dim, double eps, bool with_bias, DType dtype) : eps(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}, dtype), ParamKind::norm);
  if (with_bias) bias = register_parameter("bias", Tensor::zeros({dim}, dtype), ParamKind::bias);
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype) : eps(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}, dtype), ParamKind::norm);
}

Tensor RMSNorm::forward(const Tensor& x) const { return rms_norm(x, weight, eps); }

}  // namespace rill::nn
