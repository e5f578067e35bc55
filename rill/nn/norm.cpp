// LayerNorm and RMSNorm modules over the fused norm ops, and the factory for configs.
#include "rill/nn/norm.h"

#include "rill/backend/cpu/norm.h"
#include "rill/ops/norm.h"

namespace rill::nn {

NormKind parse_norm_kind(const std::string& name) {
  if (name == "layer") return NormKind::layer;
  if (name == "rms") return NormKind::rms;
  fail("[config] norm \"{}\" is not layer or rms", name);
}

const char* norm_kind_name(NormKind kind) { return kind == NormKind::rms ? "rms" : "layer"; }

std::shared_ptr<Norm> make_norm(NormKind kind, int64_t dim, DType dtype) {
  if (kind == NormKind::rms) return std::make_shared<RMSNorm>(dim, 1e-6, dtype);
  return std::make_shared<LayerNorm>(dim, 1e-5, true, dtype);
}

LayerNorm::LayerNorm(int64_t dim, double eps, bool with_bias, DType dtype) : eps(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}, dtype), ParamKind::norm);
  if (with_bias) bias = register_parameter("bias", Tensor::zeros({dim}, dtype), ParamKind::bias);
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

void LayerNorm::forward_into(const Tensor& x, const Tensor& y, const Tensor& stats) const {
  cpu::layer_norm_forward(x, weight, bias, eps, y, stats.select(0, 0), stats.select(0, 1));
}

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype) : eps(eps) {
  weight = register_parameter("weight", Tensor::ones({dim}, dtype), ParamKind::norm);
}

Tensor RMSNorm::forward(const Tensor& x) const { return rms_norm(x, weight, eps); }

void RMSNorm::forward_into(const Tensor& x, const Tensor& y, const Tensor& stats) const {
  cpu::rms_norm_forward(x, weight, eps, y, stats.select(0, 1));
}

}  // namespace rill::nn
