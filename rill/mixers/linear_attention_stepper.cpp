// The tight step path of the linear-attention mixer (mixer_stepper.h): q, k, v (and the input
// gate) as products with packed weights read once for all B streams, the feature map and the
// decay in place, the gated-state op's step form on the mixer's own state, the read-out (divide
// by the normaliser, or RMS-normalise each head), and the output product.
// Shapes: B streams, D d_model, H heads, Dk = Dv = head_dim, Da = Dv + 1 with the normaliser.
#include <cmath>

#include "rill/backend/cpu/vec_math.h"
#include "rill/backend/cpu/weight_gemm.h"
#include "rill/mixers/linear_attention.h"
#include "rill/ops/elementwise.h"

namespace rill {

class LinearAttentionStepper : public MixerStepper {
 public:
  LinearAttentionStepper(LinearAttentionMixer& m, int64_t batch, WeightFormat format)
      : m_(m), b_(batch), h_(m.config.heads), dh_(m.head_dim_), da_(m.state_cols_) {
    RILL_CHECK(m.config.dtype == DType::f32, "[linear_attention] the step path runs f32 models");
    RILL_CHECK(m.config.causal, "[linear_attention] step needs the causal form");
    const MultiHeadProjection& p = *m.proj_;
    wq_ = pack_weights(p.q_proj().weight, format);
    wk_ = pack_weights(p.k_proj().weight, format);
    wv_ = pack_weights(p.v_proj().weight, format);
    wo_ = pack_weights(p.o_proj().weight, format);
    const int64_t hd = h_ * dh_;
    q_ = Tensor::empty({b_, h_, dh_}), k_ = Tensor::empty({b_, h_, dh_});
    v_ = Tensor::empty({b_, h_, da_}), o_ = Tensor::empty({b_, hd});
    NoGradGuard no_grad;
    switch (m.config.decay) {
      case DecayKind::none:
        break;
      case DecayKind::retnet:
      case DecayKind::learned:  // fixed while generating: computed once
        g_ = m.log_decay(Tensor()).reshape({1, h_}).contiguous();
        break;
      case DecayKind::input:
        wg_ = pack_weights(m.gate_->weight, format);
        gate_bias_ = m.gate_->bias.contiguous();
        g_ = Tensor::empty({b_, h_});
        break;
    }
    if (!m.config.normalize) gain_ = m.out_gain_.contiguous();
  }

  size_t weight_bytes() const override {
    return wq_.bytes() + wk_.bytes() + wv_.bytes() + wo_.bytes() + wg_.bytes();
  }

  void step(const Tensor& x, const Tensor& y, State& state) override {
    const int64_t d = m_.d_model(), hd = h_ * dh_;
    const float* xp = x.data<float>();
    float* q = q_.data<float>();
    float* k = k_.data<float>();
    float* v = v_.data<float>();
    cpu::weight_gemm(xp, b_, d, wq_, nullptr, q, hd, false);
    cpu::weight_gemm(xp, b_, d, wk_, nullptr, k, hd, false);
    // v lands in the first Dv of each head's Da columns; the last is the normaliser's 1.
    for (int64_t h = 0; h < b_ * h_; ++h) {
      if (da_ > dh_) v[h * da_ + dh_] = 1.0f;
    }
    if (da_ == dh_) {
      cpu::weight_gemm(xp, b_, d, wv_, nullptr, v, hd, false);
    } else {
      float* tmp = o_.data<float>();  // free until the read-out
      cpu::weight_gemm(xp, b_, d, wv_, nullptr, tmp, hd, false);
      for (int64_t r = 0; r < b_ * h_; ++r)
        for (int64_t j = 0; j < dh_; ++j) v[r * da_ + j] = tmp[r * dh_ + j];
    }
    feature(q, b_ * hd);
    feature(k, b_ * hd);
    if (m_.config.decay == DecayKind::input) {
      float* g = g_.data<float>();
      cpu::weight_gemm(xp, b_, d, wg_, gate_bias_.data<float>(), g, h_, false);
      cpu::vec_unary<float>(UnaryOp::softplus, {1.0, 20.0}, g, g, b_ * h_);
      for (int64_t i = 0; i < b_ * h_; ++i) g[i] = -g[i];
    }
    Tensor s = state.writable("S");
    RILL_CHECK(s.shape() == Shape({b_, h_, dh_, da_}),
               "[linear_attention] state S is {} but this stepper runs {} streams",
               shape_str(s.shape()), b_);
    const Tensor out = linear_attention_step(q_, k_, v_, s, {g_});  // [B, H, Da], S in place
    readout(out.data<float>(), o_.data<float>());
    cpu::weight_gemm(o_.data<float>(), b_, hd, wo_, nullptr, y.data<float>(), d, false);
  }

 private:
  void feature(float* a, int64_t n) const {
    if (m_.config.feature_map == FeatureMap::relu) {
      for (int64_t i = 0; i < n; ++i) a[i] = a[i] > 0 ? a[i] : 0.0f;
    } else {  // elu + 1
      cpu::vec_unary<float>(UnaryOp::elu, {1.0, 0.0}, a, a, n);
      for (int64_t i = 0; i < n; ++i) a[i] += 1.0f;
    }
  }

  // out [B, H, Da] -> o [B, H * Dv]: num / (z + eps), or each head RMS-normalised with the gain.
  void readout(const float* out, float* o) const {
    const float eps = float(m_.config.eps);
    for (int64_t r = 0; r < b_ * h_; ++r) {
      const float* src = out + r * da_;
      float* dst = o + r * dh_;
      if (m_.config.normalize) {
        const float inv = 1.0f / (src[dh_] + eps);
        for (int64_t j = 0; j < dh_; ++j) dst[j] = src[j] * inv;
      } else {
        float ss = 0;
        for (int64_t j = 0; j < dh_; ++j) ss += src[j] * src[j];
        const float rstd = 1.0f / std::sqrt(ss / float(dh_) + 1e-6f);
        const float* gain = gain_.data<float>();
        for (int64_t j = 0; j < dh_; ++j) dst[j] = src[j] * rstd * gain[j];
      }
    }
  }

  LinearAttentionMixer& m_;
  int64_t b_, h_, dh_, da_;
  PackedWeights wq_, wk_, wv_, wo_, wg_;
  Tensor gate_bias_, gain_;
  Tensor q_, k_;  // [B, H, Dk]
  Tensor v_;      // [B, H, Da]
  Tensor o_;      // [B, H * Dv]
  Tensor g_;      // log-decay: [1, H] fixed, [B, H] from the input; undefined without decay
};

std::unique_ptr<MixerStepper> LinearAttentionMixer::make_stepper(int64_t batch,
                                                                 WeightFormat format) {
  if (config.dtype != DType::f32) return Mixer::make_stepper(batch, format);
  return std::make_unique<LinearAttentionStepper>(*this, batch, format);
}

}  // namespace rill
