// Causal multi-head softmax attention: the baseline every paper compares against.
// Shapes: B batch, T time, D d_model, H heads, Dh head_dim, L cached length.
// Forms: forward() runs the fused, memory-efficient kernel (online softmax over key tiles, no
// T x T matrix kept); step() either reads a KV cache that grows with the context (kv_cache) or
// recomputes the whole prefix every token (no_cache: the baseline of the linear-attention
// paper's "4000x"). window > 0 gives sliding-window attention with a bounded cache. Positions:
// rotary embeddings, T5 bucketed relative bias, or none.
#pragma once
#include <memory>
#include <string>

#include "rill/mixers/mixer.h"
#include "rill/mixers/multi_head.h"

namespace rill {

enum class PositionKind { none, rotary, t5 };
enum class StepMode { kv_cache, no_cache };
PositionKind parse_position_kind(const std::string& name);  // "none", "rotary", "t5"
StepMode parse_step_mode(const std::string& name);          // "kv_cache", "no_cache"

struct SoftmaxAttentionConfig {
  int64_t d_model = 256, heads = 4;
  int64_t head_dim = 0;  // 0: d_model / heads
  PositionKind positions = PositionKind::rotary;
  double rotary_base = 10000;
  int64_t num_buckets = 32, max_distance = 128;  // T5 bias
  int64_t window = 0;                            // 0: full causal attention
  StepMode step_mode = StepMode::kv_cache;
  uint64_t seed = 0;
  DType dtype = DType::f32;
};

class SoftmaxAttentionMixer : public Mixer {
 public:
  explicit SoftmaxAttentionMixer(const SoftmaxAttentionConfig& config);

  // kv_cache: k, v [B,H,0,Dh] (rotated keys) and pos (i64 scalar, tokens seen);
  // no_cache: x [B,0,D], the raw prefix.
  // A step appends to k and v in place (ops/index.h append): after steps they are views [B,H,L,Dh]
  // of buffers with room to grow (capacity up to 1.5 L), not contiguous. They save, load and clone
  // as ordinary tensors (a clone or a loaded state gets a buffer of its own at its next step). A
  // fork of a stream must be a clone(), as for every state a step updates in place; a shallow copy
  // that steps on is still correct (it copies its cache), only slower. State::bytes() counts the
  // bytes the views hold, as state_bytes() does, not the spare capacity: the allocator's live
  // bytes include that.
  State init_state(int64_t batch) const override;
  Tensor forward(const Tensor& x, State* state) override;
  std::string kind() const override { return "softmax_attention"; }
  // A sliding window with a KV cache holds at most `window` keys: bounded, whatever the context.
  bool constant_state() const override {
    return config.window > 0 && config.step_mode == StepMode::kv_cache;
  }
  // kv_cache: keys and values of the visible tokens (at most `window`) plus the position;
  // no_cache: every input so far.
  size_t state_bytes(int64_t context) const override {
    const int64_t keys = config.window > 0 && config.window < context ? config.window : context;
    const size_t elem = dtype_size(config.dtype);
    if (config.step_mode == StepMode::no_cache) return size_t(context) * config.d_model * elem;
    return 2 * size_t(config.heads) * head_dim_ * keys * elem + sizeof(int64_t);
  }
  double mixing_flops_per_token(int64_t context) const override {
    const int64_t keys = config.window > 0 && config.window < context ? config.window : context;
    return 4.0 * config.heads * head_dim_ * keys;  // q.k and p.v over the visible keys
  }

  SoftmaxAttentionConfig config;

 protected:
  Tensor step_impl(const Tensor& x_t, State& state) override;

 private:
  Tensor attend(const Tensor& x, const Tensor& k_cache, const Tensor& v_cache, int64_t pos,
                Tensor* k_all, Tensor* v_all);
  int64_t head_dim_;
  std::shared_ptr<MultiHeadProjection> proj_;
  Tensor rel_bias_;  // [num_buckets, H], T5 positions only
};

}  // namespace rill
