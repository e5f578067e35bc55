// ReLiT's gated feature projections: two fused projections, split per head, and the outer-product
// feature map and gates of relit.md 1.2.
#include "rill/mixers/gated_features.h"

#include <cmath>

#include "rill/nn/init.h"
#include "rill/ops/elementwise.h"

namespace rill {

namespace {

nn::LinearOptions orthogonal_sqrt2(DType dtype) {
  nn::LinearOptions o;
  o.init = nn::LinearInit::orthogonal;
  o.gain = std::sqrt(2.0);  // agalite.py: orthogonal(sqrt(2)), zero bias
  o.dtype = dtype;
  return o;
}

// Block `index` (of width `width`) of a fused projection's last dim.
Tensor block(const Tensor& y, int64_t index, int64_t width) {
  return y.narrow(y.dim() - 1, index * width, width);
}

// a [..., η] ⊗ b [..., d] -> [..., η·d], η-major.
Tensor outer_flat(const Tensor& a, const Tensor& b) {
  Tensor o = mul(a.unsqueeze(-1), b.unsqueeze(-2));  // [..., η, d]
  Shape s = a.shape();
  s.back() = a.size(-1) * b.size(-1);
  return o.reshape(s);
}

}  // namespace

GatedFeatures::GatedFeatures(const GatedFeaturesConfig& c) : config_(c) {
  RILL_CHECK(c.d_model > 0 && c.heads > 0 && c.head_dim > 0 && c.eta > 0,
             "[gated_features] d_model {}, heads {}, head_dim {} and eta {} must be positive",
             c.d_model, c.heads, c.head_dim, c.eta);
  const int64_t hd = c.heads * c.head_dim;
  kqvbg_ = register_module(
      "kqvbg", std::make_shared<nn::Linear>(c.d_model, 5 * hd, nn::derive_seed(c.seed, 1),
                                            orthogonal_sqrt2(c.dtype)));
  p_ = register_module(
      "p", std::make_shared<nn::Linear>(c.d_model, 3 * c.heads * c.eta, nn::derive_seed(c.seed, 2),
                                        orthogonal_sqrt2(c.dtype)));
  // W_o: the same init as the input projections ([unverified] for agalite.py's output Dense).
  o_ = register_module("o", std::make_shared<nn::Linear>(hd, c.d_model, nn::derive_seed(c.seed, 3),
                                                         orthogonal_sqrt2(c.dtype)));
}

GatedFeatureTensors GatedFeatures::forward(const Tensor& x) const {
  RILL_CHECK(x.defined() && x.dim() == 3 && x.size(2) == config_.d_model,
             "[gated_features] forward expects x [B, T, {}], got {}", config_.d_model,
             x.defined() ? shape_str(x.shape()) : "undefined");
  const int64_t b = x.size(0), t = x.size(1), h = config_.heads, d = config_.head_dim,
                eta = config_.eta;
  Tensor y = kqvbg_->forward(x);  // [B,T,5·H·d]
  Tensor p = p_->forward(x);      // [B,T,3·H·η]
  // One block of the fused output as per-head [B,H,T,w].
  auto heads = [&](const Tensor& full, int64_t i, int64_t w) {
    return block(full, i, h * w).reshape({b, t, h, w}).transpose(1, 2);
  };
  Tensor k = heads(y, 0, d), q = heads(y, 1, d), v = heads(y, 2, d);
  Tensor beta_hat = heads(y, 3, d), gamma_hat = heads(y, 4, d);
  Tensor p1 = heads(p, 0, eta), p2 = heads(p, 1, eta), p3 = heads(p, 2, eta);
  GatedFeatureTensors f;
  f.phi_k = outer_flat(relu(p1), relu(k));
  f.phi_q = outer_flat(relu(p2), relu(q));
  f.gamma = outer_flat(sigmoid(p3), sigmoid(gamma_hat));
  f.beta = sigmoid(beta_hat);
  f.v = v.contiguous();
  return f;
}

GatedFeatureTensors GatedFeatures::step(const Tensor& x_t) const {
  RILL_CHECK(x_t.defined() && x_t.dim() == 2 && x_t.size(1) == config_.d_model,
             "[gated_features] step expects x_t [B, {}], got {}", config_.d_model,
             x_t.defined() ? shape_str(x_t.shape()) : "undefined");
  GatedFeatureTensors f = forward(x_t.unsqueeze(1));
  for (Tensor* t : {&f.phi_k, &f.phi_q, &f.v, &f.beta, &f.gamma}) *t = t->squeeze(2);
  return f;
}

Tensor GatedFeatures::out(const Tensor& heads) const {
  const int64_t hd = config_.heads * config_.head_dim;
  RILL_CHECK(heads.defined() && heads.dim() >= 2 && heads.size(-1) == config_.head_dim &&
                 heads.size(-2) == config_.heads,
             "[gated_features] out expects [..., H={}, d={}], got {}", config_.heads,
             config_.head_dim, heads.defined() ? shape_str(heads.shape()) : "undefined");
  Shape s(heads.shape().begin(), heads.shape().end() - 2);
  s.push_back(hd);
  return o_->forward(heads.reshape(s));
}

}  // namespace rill
