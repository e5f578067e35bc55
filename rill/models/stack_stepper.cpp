// The tight step path of the block stack (model_stepper.h): the embedding rows gathered into a
// buffer, then per block the norms on buffers, the mixer's own stepper, and the MLP as two
// products with packed weights (the residual added by the second product itself), then the final
// norm and the head. GRU-gated blocks take their tensor step (no tight path yet).
// Shapes: B streams, D d_model, F mlp_hidden, V vocabulary.
#include <cstring>

#include "rill/backend/cpu/vec_math.h"
#include "rill/backend/cpu/weight_gemm.h"
#include "rill/models/stack_model.h"

namespace rill {

namespace {

struct BlockPath {
  Block* block = nullptr;
  std::unique_ptr<MixerStepper> mixer;  // null for a block that takes its tensor step
  PackedWeights fc1, fc2, gate, up, down;
  Tensor fc1_bias, fc2_bias, gate_bias, up_bias, down_bias;
};

Tensor bias_of(const nn::Linear& l) { return l.bias.defined() ? l.bias.contiguous() : Tensor(); }
const float* ptr(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

class StackStepper : public ModelStepper {
 public:
  StackStepper(StackModel& m, int64_t batch, WeightFormat format) : m_(m), b_(batch) {
    const StackConfig& c = m.config;
    RILL_CHECK(c.dtype == DType::f32 && m.embed, "[stepper] the step path runs f32 token models");
    const int64_t d = c.d_model;
    for (const auto& blk : m.blocks) {
      BlockPath p;
      p.block = blk.get();
      if (blk->kind != BlockKind::gru_gated) {
        p.mixer = blk->mixer->make_stepper(batch, format);
        const nn::MLP& mlp = *blk->mlp;
        if (mlp.kind == nn::MLPKind::swiglu) {
          p.gate = pack_weights(mlp.gate->weight, format), p.gate_bias = bias_of(*mlp.gate);
          p.up = pack_weights(mlp.up->weight, format), p.up_bias = bias_of(*mlp.up);
          p.down = pack_weights(mlp.down->weight, format), p.down_bias = bias_of(*mlp.down);
        } else {
          p.fc1 = pack_weights(mlp.fc1->weight, format), p.fc1_bias = bias_of(*mlp.fc1);
          p.fc2 = pack_weights(mlp.fc2->weight, format), p.fc2_bias = bias_of(*mlp.fc2);
        }
      }
      paths_.push_back(std::move(p));
    }
    head_ = pack_weights(m.out_proj ? m.out_proj->weight : m.embed->weight, format);
    h_ = Tensor::empty({b_, d}), n_ = Tensor::empty({b_, d}), y_ = Tensor::empty({b_, d});
    u_ = Tensor::empty({b_, c.mlp_hidden}), u2_ = Tensor::empty({b_, c.mlp_hidden});
    stats_ = Tensor::empty({2, b_});
    logits_ = Tensor::empty({b_, c.io.out_dim});
  }

  int64_t batch() const override { return b_; }

  size_t weight_bytes() const override {
    size_t bytes = head_.bytes();
    for (const BlockPath& p : paths_)
      bytes += p.fc1.bytes() + p.fc2.bytes() + p.gate.bytes() + p.up.bytes() + p.down.bytes() +
               (p.mixer ? p.mixer->weight_bytes() : 0);
    return bytes;
  }

  Tensor step(const Tensor& ids, State& state) override {
    NoGradGuard no_grad;
    const StackConfig& c = m_.config;
    const int64_t d = c.d_model;
    RILL_CHECK(ids.defined() && ids.dim() == 1 && ids.size(0) == b_ && ids.dtype() == DType::i64,
               "[stepper] expects ids [{}] (i64), got {}", b_,
               ids.defined() ? shape_str(ids.shape()) : "undefined");
    const int64_t* id = ids.data<int64_t>();
    const Tensor table = m_.embed->weight;  // [V, D], contiguous
    for (int64_t b = 0; b < b_; ++b) {
      RILL_CHECK(id[b] >= 0 && id[b] < c.io.vocab,
                 "[stepper] token {} is outside the vocabulary of {}", id[b], c.io.vocab);
      std::memcpy(h_.data<float>() + b * d, table.data<float>() + id[b] * d, d * sizeof(float));
    }
    for (size_t i = 0; i < paths_.size(); ++i) {
      const std::string prefix = "layers." + std::to_string(i);
      State s = state.sub(prefix);
      block_step(paths_[i], s);
      state.insert(prefix, s);
    }
    m_.final_norm->forward_into(h_, n_, stats_);
    cpu::weight_gemm(n_.data<float>(), b_, d, head_, nullptr, logits_.data<float>(), c.io.out_dim,
                     false);
    return logits_;
  }

 private:
  void block_step(BlockPath& p, State& s) {
    Block& blk = *p.block;
    if (!p.mixer) {  // GRU-gated: the tensor step, h in place
      Tensor(h_).copy_(blk.step(h_, s));
      return;
    }
    float* h = h_.data<float>();
    const int64_t n = h_.numel();
    if (blk.kind == BlockKind::pre_norm) {  // h += mixer(norm1(h)); h += mlp(norm2(h))
      blk.norm1->forward_into(h_, n_, stats_);
      p.mixer->step(n_, y_, s);
      const float* y = y_.data<float>();
      for (int64_t i = 0; i < n; ++i) h[i] += y[i];
      blk.norm2->forward_into(h_, n_, stats_);
      mlp(p, n_, h_, true);
    } else {  // post-norm: h = norm1(h + mixer(h)); h = norm2(h + mlp(h))
      p.mixer->step(h_, y_, s);
      float* y = y_.data<float>();
      for (int64_t i = 0; i < n; ++i) y[i] += h[i];
      blk.norm1->forward_into(y_, h_, stats_);
      Tensor(y_).copy_(h_);
      mlp(p, h_, y_, true);
      blk.norm2->forward_into(y_, h_, stats_);
    }
  }

  // out (+)= mlp(x), x and out [B, D].
  void mlp(const BlockPath& p, const Tensor& x, const Tensor& out, bool accumulate) {
    const StackConfig& c = m_.config;
    const int64_t d = c.d_model, f = c.mlp_hidden;
    float* u = u_.data<float>();
    if (c.mlp == nn::MLPKind::swiglu) {
      float* u2 = u2_.data<float>();
      cpu::weight_gemm(x.data<float>(), b_, d, p.gate, ptr(p.gate_bias), u, f, false);
      cpu::weight_gemm(x.data<float>(), b_, d, p.up, ptr(p.up_bias), u2, f, false);
      cpu::vec_unary<float>(UnaryOp::silu, {}, u, u, b_ * f);
      for (int64_t i = 0; i < b_ * f; ++i) u[i] *= u2[i];
      cpu::weight_gemm(u, b_, f, p.down, ptr(p.down_bias), out.data<float>(), d, accumulate);
      return;
    }
    cpu::weight_gemm(x.data<float>(), b_, d, p.fc1, ptr(p.fc1_bias), u, f, false);
    if (c.mlp == nn::MLPKind::gelu)
      cpu::vec_unary<float>(UnaryOp::gelu_erf, {}, u, u, b_ * f);
    else
      for (int64_t i = 0; i < b_ * f; ++i) u[i] = u[i] > 0 ? u[i] : 0.0f;
    cpu::weight_gemm(u, b_, f, p.fc2, ptr(p.fc2_bias), out.data<float>(), d, accumulate);
  }

  StackModel& m_;
  int64_t b_;
  std::vector<BlockPath> paths_;
  PackedWeights head_;
  Tensor h_, n_, y_;  // [B, D]: the residual stream, a normed copy, a mixer's output
  Tensor u_, u2_;     // [B, F]
  Tensor stats_;      // [2, B]: the norms' mean and rstd
  Tensor logits_;     // [B, V]
};

}  // namespace

std::unique_ptr<ModelStepper> StackModel::make_stepper(int64_t batch, WeightFormat format) {
  if (config.dtype != DType::f32 || !embed) return SequenceModel::make_stepper(batch, format);
  return std::make_unique<StackStepper>(*this, batch, format);
}

}  // namespace rill
