// The tight step path of the Aaren mixer (mixer_stepper.h): the scores as one [H, D] product
// with the keys folded in (computed once, when the stepper is made), the values and the output
// as products with packed weights read once for all B streams, and the scan's one-token update
// on the mixer's own state in place: (lse, o) (+) (s, 1, v), then o = w / u, lse = m + log u,
// the same arithmetic as the cpu kernel's.
// Shapes: B streams, D d_model, H heads, d head_dim.
#include <cmath>

#include "rill/backend/cpu/weight_gemm.h"
#include "rill/backend/softmax_scan.h"
#include "rill/mixers/aaren.h"

namespace rill {

class AarenStepper : public MixerStepper {
 public:
  AarenStepper(AarenMixer& m, int64_t batch, WeightFormat format)
      : b_(batch), h_(m.config.heads), dh_(m.head_dim_) {
    RILL_CHECK(m.config.dtype == DType::f32, "[aaren] the step path runs f32 models");
    NoGradGuard no_grad;
    const auto [u, c] = m.score_weights();
    wu_ = pack_weights(u, format);
    if (c.defined()) score_bias_ = c.contiguous();
    const MultiHeadProjection& p = *m.proj_;
    wv_ = pack_weights(p.v_proj().weight, format);
    wo_ = pack_weights(p.o_proj().weight, format);
    if (p.v_proj().bias.defined()) v_bias_ = p.v_proj().bias.contiguous();
    if (p.o_proj().bias.defined()) o_bias_ = p.o_proj().bias.contiguous();
    s_ = Tensor::empty({b_, h_}), v_ = Tensor::empty({b_, h_ * dh_});
    w_ = Tensor::empty({dh_});
  }

  size_t weight_bytes() const override { return wu_.bytes() + wv_.bytes() + wo_.bytes(); }

  void step(const Tensor& x, const Tensor& y, State& state) override {
    const int64_t d = x.size(1), hd = h_ * dh_;
    const float* xp = x.data<float>();
    auto data = [](const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; };
    cpu::weight_gemm(xp, b_, d, wu_, data(score_bias_), s_.data<float>(), h_, false);
    cpu::weight_gemm(xp, b_, d, wv_, data(v_bias_), v_.data<float>(), hd, false);
    Tensor lse = own(state, "lse", {b_, h_}), o = own(state, "o", {b_, h_, dh_});
    float* lp = lse.data<float>();
    float* op = o.data<float>();
    const float* sp = s_.data<float>();
    const float* vp = v_.data<float>();
    float* w = w_.data<float>();
    for (int64_t r = 0; r < b_ * h_; ++r) {
      // The carried state as a scan element (lse, 1, o), or the identity when fresh.
      float m = lp[r], u = 0;
      if (m != -INFINITY) {
        u = 1;
        for (int64_t j = 0; j < dh_; ++j) w[j] = op[r * dh_ + j];
      }
      softmax_scan_combine(m, u, w, sp[r], 1.0f, vp + r * dh_, dh_);
      const float inv = 1.0f / u;
      for (int64_t j = 0; j < dh_; ++j) op[r * dh_ + j] = w[j] * inv;
      lp[r] = m + std::log(u);
    }
    cpu::weight_gemm(op, b_, hd, wo_, data(o_bias_), y.data<float>(), d, false);
  }

 private:
  // The state tensor `name`, to be written in place, checked to be of this batch.
  Tensor own(State& state, const char* name, const Shape& want) const {
    Tensor t = state.writable(name);
    RILL_CHECK(t.shape() == want, "[aaren] state {} is {} but this stepper runs {} streams", name,
               shape_str(t.shape()), b_);
    return t;
  }

  int64_t b_, h_, dh_;
  PackedWeights wu_, wv_, wo_;
  Tensor score_bias_, v_bias_, o_bias_;  // [H], [H*d], [D] or undefined
  Tensor s_;                             // [B, H] scores
  Tensor v_;                             // [B, H*d] values
  Tensor w_;                             // [d] one scan element's w
};

std::unique_ptr<MixerStepper> AarenMixer::make_stepper(int64_t batch, WeightFormat format) {
  if (config.dtype != DType::f32) return Mixer::make_stepper(batch, format);
  return std::make_unique<AarenStepper>(*this, batch, format);
}

}  // namespace rill
