// LayerNorm and RMSNorm over the last dim. Gains start at 1, biases at 0.
#pragma once
#include <memory>
#include <string>

#include "rill/nn/module.h"

namespace rill::nn {

// What a block holds when the kind of norm is a configuration choice.
class Norm : public Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;
  // The same into y, without a tape or any allocation (the step path of generation): x, y
  // contiguous [rows, D] f32 or f64, stats [2, rows] of the same dtype as scratch.
  virtual void forward_into(const Tensor& x, const Tensor& y, const Tensor& stats) const = 0;
};

enum class NormKind { layer, rms };
NormKind parse_norm_kind(const std::string& name);  // "layer" or "rms"
const char* norm_kind_name(NormKind kind);
std::shared_ptr<Norm> make_norm(NormKind kind, int64_t dim, DType dtype);

class LayerNorm : public Norm {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool bias = true, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const override;
  void forward_into(const Tensor& x, const Tensor& y, const Tensor& stats) const override;

  Tensor weight;  // [dim]
  Tensor bias;    // [dim] (undefined without bias)
  double eps;
};

class RMSNorm : public Norm {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6, DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const override;
  void forward_into(const Tensor& x, const Tensor& y, const Tensor& stats) const override;

  Tensor weight;  // [dim]
  double eps;
};

}  // namespace rill::nn
