// One layer of the Compact Recurrent Transformer's shallow segment transformer (crt.h): pre-norm
// causal softmax attention over the rows of the current segment, then a pre-norm MLP.
// Shapes: B batch, n new rows, C rows already in the segment, D d_model, H heads, Dh head_dim.
//
//   xn = norm1(x);  q, k, v = xn W_q, xn W_k, xn W_v  (rotary on q and k when asked, at the rows'
//   positions in the segment);  a = attention(q, [cache | k], [cache | v]) causal;
//   y = x + a W_o;  out = y + MLP(norm2(y))
//
// A segment's rows are the memory slot (row 0, when the model has a memory), its tokens, and, at
// its end, the write slot; the layer does not know which is which: it sees rows at positions
// first .. first + n - 1 and the keys and values of the C = first rows before them.
#pragma once
#include <memory>
#include <vector>

#include "rill/mixers/multi_head.h"
#include "rill/nn/mlp.h"
#include "rill/nn/norm.h"

namespace rill {

struct CrtLayerConfig {
  int64_t d_model = 256, heads = 4, head_dim = 64, mlp_hidden = 1024;
  nn::MLPKind mlp = nn::MLPKind::gelu;
  nn::NormKind norm = nn::NormKind::layer;
  bool rotary = true;  // rotary positions on q and k (else the model adds learned ones, or none)
  DType dtype = DType::f32;
};

class CrtLayer : public nn::Module {
 public:
  CrtLayer(const CrtLayerConfig& config, uint64_t seed);

  // x [B, n, D], the rows at segment positions first .. first + n - 1; keys and values
  // [B, H, first, Dh] hold the rows before them (undefined when first == 0) and come back with
  // the new rows appended [B, H, first + n, Dh]. Visibility: every row sees itself and the rows
  // before it, except that stream b does not see rows pinned .. hidden_to[b] - 1 (a stream that
  // restarted inside the segment; the first `pinned` rows, the memory slot, stay visible).
  // hidden_to empty: every row visible. Returns [B, n, D].
  Tensor forward(const Tensor& x, int64_t first, Tensor& keys, Tensor& values, int64_t pinned,
                 const std::vector<int64_t>& hidden_to) const;

  // Forward FLOPs of one row that attends to `keys` keys (itself included).
  double flops_per_row(double keys) const;

  CrtLayerConfig config;
  std::shared_ptr<nn::Norm> norm1, norm2;
  std::shared_ptr<MultiHeadProjection> proj;
  std::shared_ptr<nn::MLP> mlp;
};

}  // namespace rill
