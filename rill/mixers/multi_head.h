// Multi-head projections shared by the attention mixers: q, k, v and output projections, and
// the reshapes between [B, T, D] and per-head [B, H, T, Dh].
#pragma once
#include <memory>

#include "rill/io/json_fields.h"
#include "rill/nn/linear.h"

namespace rill {

// Reads an attention mixer's "heads" and "head_dim" (0: d_model / heads) with their ranges.
void read_heads(JsonFields& f, int64_t d_model, int64_t& heads, int64_t& head_dim);

class MultiHeadProjection : public nn::Module {
 public:
  // q and k get `dk` features per head, v gets `dv`; the output maps H*dv back to d_model.
  MultiHeadProjection(int64_t d_model, int64_t heads, int64_t dk, int64_t dv, uint64_t seed,
                      bool bias = false, DType dtype = DType::f32);

  Tensor q(const Tensor& x) const { return split(q_->forward(x), dk_); }  // [B,T,D] -> [B,H,T,dk]
  Tensor k(const Tensor& x) const { return split(k_->forward(x), dk_); }
  Tensor v(const Tensor& x) const { return split(v_->forward(x), dv_); }
  Tensor out(const Tensor& heads) const;  // [B,H,T,dv] -> [B,T,D]

  // The four projections, for paths that read their weights directly (the step path).
  const nn::Linear& q_proj() const { return *q_; }
  const nn::Linear& k_proj() const { return *k_; }
  const nn::Linear& v_proj() const { return *v_; }
  const nn::Linear& o_proj() const { return *o_; }
  int64_t heads() const { return heads_; }
  int64_t dk() const { return dk_; }
  int64_t dv() const { return dv_; }

 private:
  Tensor split(const Tensor& y, int64_t d) const;  // [B,T,H*d] -> [B,H,T,d]
  int64_t heads_, dk_, dv_;
  std::shared_ptr<nn::Linear> q_, k_, v_, o_;
};

}  // namespace rill
