// The embedding table and its lookup.
#include "rill/nn/embedding.h"

#include "rill/nn/init.h"
#include "rill/ops/index.h"

namespace rill::nn {

Embedding::Embedding(int64_t vocab, int64_t dim, uint64_t seed, double std, DType dtype) {
  RILL_CHECK(vocab > 0 && dim > 0, "[embedding] sizes must be positive, got {} x {}", vocab, dim);
  Tensor w = Tensor::empty({vocab, dim}, dtype);
  normal_(w, 0, std, derive_seed(seed, 0));
  weight = register_parameter("weight", w, ParamKind::embedding);
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight, ids); }

}  // namespace rill::nn
