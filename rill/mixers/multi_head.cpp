// The q, k, v and output projections of the attention mixers, and the head reshapes.
#include "rill/mixers/multi_head.h"

#include "rill/nn/init.h"

namespace rill {

void read_heads(JsonFields& f, int64_t d_model, int64_t& heads, int64_t& head_dim) {
  f.get("heads", heads);
  f.check("heads", heads, heads > 0 && heads <= d_model, "between 1 and d_model");
  f.get("head_dim", head_dim);
  f.check("head_dim", head_dim, head_dim >= 0 && head_dim <= 4096,
          "between 0 (d_model / heads) and 4096");
}

MultiHeadProjection::MultiHeadProjection(int64_t d_model, int64_t heads, int64_t dk, int64_t dv,
                                         uint64_t seed, bool bias, DType dtype)
    : heads_(heads), dk_(dk), dv_(dv) {
  RILL_CHECK(heads > 0 && dk > 0 && dv > 0, "[multi_head] heads {} dk {} dv {} must be positive",
             heads, dk, dv);
  nn::LinearOptions o;
  o.bias = bias;
  o.dtype = dtype;
  q_ = register_module(
      "q", std::make_shared<nn::Linear>(d_model, heads * dk, nn::derive_seed(seed, 0), o));
  k_ = register_module(
      "k", std::make_shared<nn::Linear>(d_model, heads * dk, nn::derive_seed(seed, 1), o));
  v_ = register_module(
      "v", std::make_shared<nn::Linear>(d_model, heads * dv, nn::derive_seed(seed, 2), o));
  o_ = register_module(
      "o", std::make_shared<nn::Linear>(heads * dv, d_model, nn::derive_seed(seed, 3), o));
}

Tensor MultiHeadProjection::split(const Tensor& y, int64_t d) const {
  const int64_t b = y.size(0), t = y.size(1);
  return y.view({b, t, heads_, d}).transpose(1, 2);
}

Tensor MultiHeadProjection::out(const Tensor& h) const {
  const int64_t b = h.size(0), t = h.size(2);
  return o_->forward(h.transpose(1, 2).reshape({b, t, heads_ * h.size(3)}));
}

}  // namespace rill
