// The transformer feed-forward block: GELU (fc2(gelu(fc1 x))), ReLU (fc2(relu(fc1 x)), as
// GTrXL and the ReLiT authors use) or SwiGLU (down(silu(gate x) * up x), Shazeer 2020). Linear
// layers use their default initialisation.
#pragma once
#include <memory>

#include "rill/nn/linear.h"

namespace rill::nn {

enum class MLPKind { gelu, relu, swiglu };
MLPKind parse_mlp_kind(const std::string& name);  // "gelu", "relu" or "swiglu"
const char* mlp_kind_name(MLPKind kind);

class MLP : public Module {
 public:
  MLP(int64_t dim, int64_t hidden, MLPKind kind, uint64_t seed, bool bias = true,
      DType dtype = DType::f32);
  Tensor forward(const Tensor& x) const;

  MLPKind kind;
  std::shared_ptr<Linear> fc1, fc2;        // gelu, relu: dim -> hidden -> dim
  std::shared_ptr<Linear> gate, up, down;  // swiglu
};

}  // namespace rill::nn
