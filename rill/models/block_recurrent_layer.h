// One layer of the Block-Recurrent Transformer (Hutchins et al. 2022; papers/block-recurrent.md
// §1): sliding-window attention over blocks of W tokens, and, in a recurrent layer, a cell of S
// state vectors that the tokens read and that is rewritten once per block.
// Shapes: B batch, T time, D d_model, H heads, Dh head_dim, W window (= block length), S states,
// C cached tokens (at most 2W - 1).
//
// Vertical direction (every layer; tokens -> outputs), x [B, T, D]:
//   xn = RMSNorm1(x);  q = a1 * n(xn W_q);  k = n(xn W_k);  v = xn W_v          n: per-head L2 norm
//   A_tt: each token attends to itself and the W tokens before it (keys cached across calls, with
//         no gradient across segments: the trainer detaches the state), T5 relative bias
//   recurrent: A_ts: each token also attends (unmasked, no positions) to the S states as they
//         were before its block: s = RMSNorm2(state) + ids; q2 = a2 * n(xn W_q2);
//         k_s = n(s W'_k); v_s = s W'_v
//   y = x + [A_tt | A_ts] W_o;   out = y + FFN(RMSNorm3(y))        (FFN: ReLU, no biases)
// Horizontal direction (recurrent layers, at the end of every block; states -> next states):
//   A_ss = attn(a'1 * n(s W'_q), k_s, v_s);  A_st = attn(a'2 * n(s W'_q2), keys and values of the
//   previous and the current block (2W), unmasked);  h = [A_ss | A_st]  [B, S, 2 H Dh]
//   skip:   next = gate(state, h W'_o)
//   dual:   c = gate1(state, h W'_o);  u = relu(RMSNorm4(c) F1);  next = gate2(c, u F2)   (gate2
//           reads u)
//   single: u = relu(h F1);  next = gate(state, tanh(u F2))                          (gate reads u)
//   (gate.h: fixed or lstm; the lstm gate of skip reads h.) Keys and values are shared between
//   the directions: the tokens' (k, v) serve A_tt and A_st, the states' (k_s, v_s) A_ts and A_ss.
// A token of block j reads the state made from blocks < j only, so the layer stays causal.
//
// Choices where the paper and the official code (meliad) differ, or where the code has quirks:
//   - a token attends to itself and the W before it (meliad: the W before it, not itself);
//   - keys before a stream's start are masked (meliad: zero keys, unmasked, at a document start);
//   - the learned scales a multiply q (one per head and query kind) and the T5 bias is added
//     after them, as T5 does (meliad adds it before); the scales start at sqrt(Dh), the size of
//     ordinary dot-product logits, where meliad starts at 1 (near-uniform attention: slow to
//     leave under Adam at the learning rates of a short run);
//   - the update z has no tanh and no bias in skip and dual (meliad; the paper writes
//     tanh(W h + b)); single keeps meliad's tanh.
#pragma once
#include <memory>
#include <vector>

#include "rill/models/recurrent_gate.h"
#include "rill/nn/linear.h"
#include "rill/nn/norm.h"

namespace rill {

enum class CellKind { skip, single, dual };
CellKind parse_cell_kind(const std::string& name);  // "skip", "single", "dual"
const char* cell_kind_name(CellKind kind);

struct BlockRecurrentLayerConfig {
  int64_t d_model = 256, heads = 4, head_dim = 64, mlp_hidden = 1024;
  int64_t window = 64;  // W: the block length, and how many earlier tokens a token sees
  bool recurrent = false;
  int64_t states = 64;  // S
  GateKind gate = GateKind::fixed;
  CellKind cell = CellKind::skip;
  int64_t num_buckets = 32, max_distance = 128;  // T5 bias
  double scale_init = 0;                         // 0: sqrt(head_dim)
  DType dtype = DType::f32;
};

// Where a call's tokens sit in the streams, the same for every layer of one call: the streams
// share one clock (blocks end at multiples of W of it), and each stream sees only tokens from
// its own start (its last reset) on.
struct WindowClock {
  int64_t pos = 0;             // tokens seen before this call
  std::vector<int64_t> start;  // [B] per stream: the position of its first visible token
  // Tokens cached after `pos` tokens: those of the previous block and the current one so far,
  // which the sliding window and the state's next read need.
  static int64_t cached_after(int64_t pos, int64_t window);
};

class BlockRecurrentLayer : public nn::Module {
 public:
  BlockRecurrentLayer(const BlockRecurrentLayerConfig& config, uint64_t seed);

  // x [B, T, D]. keys, values [B, H, 2W, Dh]: the cache, whose first cached_after(clock.pos) rows
  // hold the tokens before this call; replaced by the cache after it (the same shape). cell [B, S,
  // D] (recurrent layers): the state entering the call, replaced by the state leaving it.
  Tensor forward(const Tensor& x, const WindowClock& clock, Tensor& keys, Tensor& values,
                 Tensor& cell);
  // The learned initial state for B streams [B, S, D] (on the tape: it is a parameter).
  Tensor initial_cell(int64_t batch) const;

  BlockRecurrentLayerConfig config;
  std::shared_ptr<nn::RMSNorm> norm1, norm3;
  std::shared_ptr<nn::Linear> wq, wk, wv, wo, ffn1, ffn2;
  Tensor scale;    // [H] a1
  Tensor t5_bias;  // [num_buckets, H]
  // Recurrent layers only: the tokens' second query, and the state path (names "state_*").
  std::shared_ptr<nn::Linear> wq2;
  Tensor scale2;  // [H] a2
  std::shared_ptr<nn::RMSNorm> norm2, norm4;
  std::shared_ptr<nn::Linear> sq, sq2, sk, sv, so, sffn1, sffn2;
  Tensor state_scale, state_scale2;  // [H]: a'1, a'2
  Tensor state_ids, initial_state;   // [S, D]
  std::shared_ptr<RecurrentGate> gate1, gate2;

  // Forward FLOPs per token at this context: the token path, plus the state path's per-block
  // work spread over the block's W tokens.
  double flops_per_token(int64_t context) const;

 private:
  Tensor recurrence(const Tensor& xn, const Tensor& keys, const Tensor& values,
                    const WindowClock& clock, Tensor& cell) const;
  Tensor next_state(const Tensor& cell, const Tensor& h) const;  // [B,S,D], [B,S,2HDh]
  Tensor split(const Tensor& y) const;                           // [B, T, H*Dh] -> [B, H, T, Dh]
  Tensor merge(const Tensor& a) const;                           // [B, H, T, Dh] -> [B, T, H*Dh]
  Tensor unit(const Tensor& y) const;  // n(.) per head of [B, T, H*Dh] -> [B, H, T, Dh]
  Tensor query(const nn::Linear& w, const Tensor& scale, const Tensor& x) const;
};

}  // namespace rill
