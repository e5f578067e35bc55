// A block-recurrent layer: the sliding-window attention every layer has, the recurrent cell's
// two directions, and the cache bookkeeping of the window.
#include "rill/models/block_recurrent_layer.h"

#include <algorithm>
#include <cmath>

#include "rill/core/error.h"
#include "rill/models/token_step_model.h"
#include "rill/nn/init.h"
#include "rill/ops/attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/norm.h"

namespace rill {

namespace {

// Fused attention of q [B, H, Tq, Dh] over k, v [B, H, Tk, Dh] whose row j sits at position
// first + j, where stream b sees only keys at positions >= start[b]. When some stream started
// inside the keys (after a reset), each stream runs on its own slice of them: the fused kernel
// masks by position, not by stream, and this is rare (the first blocks after a reset).
Tensor attend_from(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt,
                   const Tensor& bias, int64_t first, const std::vector<int64_t>& start) {
  const int64_t batch = q.size(0), tk = k.size(2);
  bool all_visible = true;
  for (int64_t s : start) all_visible = all_visible && s <= first;
  if (all_visible) return attention(q, k, v, opt, bias);
  std::vector<Tensor> out;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t skip = std::clamp(start[size_t(b)] - first, int64_t(0), tk);
    RILL_CHECK(skip < tk, "[block_recurrent] stream {} has no visible key (internal error)", b);
    AttentionOptions o = opt;
    if (o.causal) o.q_offset -= skip;
    out.push_back(attention(q.narrow(0, b, 1), k.narrow(0, b, 1).narrow(2, skip, tk - skip),
                            v.narrow(0, b, 1).narrow(2, skip, tk - skip), o, bias));
  }
  return concat(out, 0);
}

std::shared_ptr<nn::Linear> linear(int64_t in, int64_t out, uint64_t seed, DType dtype) {
  nn::LinearOptions o;
  o.bias = false;
  o.dtype = dtype;
  return std::make_shared<nn::Linear>(in, out, seed, o);
}

}  // namespace

CellKind parse_cell_kind(const std::string& name) {
  if (name == "skip") return CellKind::skip;
  if (name == "single") return CellKind::single;
  if (name == "dual") return CellKind::dual;
  fail("[config] unknown recurrent cell \"{}\" (known: skip, single, dual)", name);
}

const char* cell_kind_name(CellKind kind) {
  return kind == CellKind::skip ? "skip" : kind == CellKind::single ? "single" : "dual";
}

int64_t WindowClock::cached_after(int64_t pos, int64_t window) {
  return std::min(pos, window + pos % window);
}

BlockRecurrentLayer::BlockRecurrentLayer(const BlockRecurrentLayerConfig& c, uint64_t seed)
    : config(c) {
  const int64_t D = c.d_model, H = c.heads, HD = c.heads * c.head_dim;
  const DType dt = c.dtype;
  auto seed_of = [&](uint64_t k) { return nn::derive_seed(seed, k); };
  auto scales = [&](const char* name) {
    const double init = c.scale_init > 0 ? c.scale_init : std::sqrt(double(c.head_dim));
    return register_parameter(name, Tensor::full({H}, init, dt), nn::ParamKind::norm);
  };
  norm1 = register_module("norm1", std::make_shared<nn::RMSNorm>(D, 1e-6, dt));
  wq = register_module("wq", linear(D, HD, seed_of(1), dt));
  wk = register_module("wk", linear(D, HD, seed_of(2), dt));
  wv = register_module("wv", linear(D, HD, seed_of(3), dt));
  scale = scales("scale");
  t5_bias =
      register_parameter("t5_bias", Tensor::zeros({c.num_buckets, H}, dt), nn::ParamKind::bias);
  wo = register_module("wo", linear(c.recurrent ? 2 * HD : HD, D, seed_of(4), dt));
  norm3 = register_module("norm3", std::make_shared<nn::RMSNorm>(D, 1e-6, dt));
  ffn1 = register_module("ffn1", linear(D, c.mlp_hidden, seed_of(5), dt));
  ffn2 = register_module("ffn2", linear(c.mlp_hidden, D, seed_of(6), dt));
  if (!c.recurrent) return;
  wq2 = register_module("wq2", linear(D, HD, seed_of(7), dt));
  scale2 = scales("scale2");
  norm2 = register_module("state_norm", std::make_shared<nn::RMSNorm>(D, 1e-6, dt));
  sq = register_module("state_wq", linear(D, HD, seed_of(8), dt));
  sq2 = register_module("state_wq2", linear(D, HD, seed_of(9), dt));
  sk = register_module("state_wk", linear(D, HD, seed_of(10), dt));
  sv = register_module("state_wv", linear(D, HD, seed_of(11), dt));
  state_scale = scales("state_scale");
  state_scale2 = scales("state_scale2");
  state_ids = Tensor::empty({c.states, D}, dt);
  nn::normal_(state_ids, 0, 1, seed_of(12));
  state_ids = register_parameter("state_ids", state_ids, nn::ParamKind::embedding);
  initial_state = Tensor::empty({c.states, D}, dt);
  nn::normal_(initial_state, 0, 0.1, seed_of(13));
  initial_state = register_parameter("initial_state", initial_state, nn::ParamKind::embedding);
  switch (c.cell) {
    case CellKind::skip:
      so = register_module("state_wo", linear(2 * HD, D, seed_of(14), dt));
      gate1 = register_module("gate",
                              std::make_shared<RecurrentGate>(c.gate, D, 2 * HD, seed_of(15), dt));
      break;
    case CellKind::dual:
      so = register_module("state_wo", linear(2 * HD, D, seed_of(14), dt));
      gate1 = register_module("gate",
                              std::make_shared<RecurrentGate>(c.gate, D, 2 * HD, seed_of(15), dt));
      norm4 = register_module("state_norm2", std::make_shared<nn::RMSNorm>(D, 1e-6, dt));
      sffn1 = register_module("state_ffn1", linear(D, c.mlp_hidden, seed_of(16), dt));
      sffn2 = register_module("state_ffn2", linear(c.mlp_hidden, D, seed_of(17), dt));
      gate2 = register_module(
          "gate2", std::make_shared<RecurrentGate>(c.gate, D, c.mlp_hidden, seed_of(18), dt));
      break;
    case CellKind::single:
      sffn1 = register_module("state_ffn1", linear(2 * HD, c.mlp_hidden, seed_of(16), dt));
      sffn2 = register_module("state_ffn2", linear(c.mlp_hidden, D, seed_of(17), dt));
      gate1 = register_module(
          "gate", std::make_shared<RecurrentGate>(c.gate, D, c.mlp_hidden, seed_of(15), dt));
      break;
  }
}

Tensor BlockRecurrentLayer::split(const Tensor& y) const {
  return y.view({y.size(0), y.size(1), config.heads, config.head_dim}).transpose(1, 2);
}

Tensor BlockRecurrentLayer::merge(const Tensor& a) const {
  return a.transpose(1, 2).reshape({a.size(0), a.size(2), config.heads * config.head_dim});
}

// RMSNorm without a gain gives |x| = sqrt(Dh); query() divides by Dh so that the logits are
// a * (unit q . unit k).
Tensor BlockRecurrentLayer::unit(const Tensor& y) const {
  return rms_norm(y.view({y.size(0), y.size(1), config.heads, config.head_dim}), Tensor())
      .transpose(1, 2);
}

Tensor BlockRecurrentLayer::query(const nn::Linear& w, const Tensor& s, const Tensor& x) const {
  return unit(w.forward(x)) * (s.view({1, config.heads, 1, 1}) * (1.0 / double(config.head_dim)));
}

Tensor BlockRecurrentLayer::initial_cell(int64_t batch) const {
  return Tensor::zeros({batch, config.states, config.d_model}, config.dtype) + initial_state;
}

Tensor BlockRecurrentLayer::forward(const Tensor& x, const WindowClock& clock, Tensor& keys,
                                    Tensor& values, Tensor& cell) {
  const int64_t T = x.size(1), W = config.window;
  const int64_t C = WindowClock::cached_after(clock.pos, W);
  const Tensor xn = norm1->forward(x);
  const Tensor q = query(*wq, scale, xn);  // [B, H, T, Dh]
  const Tensor k = unit(wk->forward(xn)), v = split(wv->forward(xn));
  // Keys and values of the cached tokens and this call's: [B, H, C + T, Dh].
  const Tensor K = C > 0 ? concat({keys.narrow(2, 0, C), k}, 2) : k;
  const Tensor V = C > 0 ? concat({values.narrow(2, 0, C), v}, 2) : v;
  AttentionOptions window;
  window.causal = true;
  window.q_offset = C;
  window.window = W + 1;  // itself and the W tokens before it
  window.scale = 1.0;     // the scales are in q
  window.num_buckets = config.num_buckets;
  window.max_distance = config.max_distance;
  Tensor mixed = merge(attend_from(q, K, V, window, t5_bias, clock.pos - C, clock.start));
  if (config.recurrent) mixed = concat({mixed, merge(recurrence(xn, K, V, clock, cell))}, 2);
  Tensor y = x + wo->forward(mixed);
  y = y + ffn2->forward(relu(ffn1->forward(norm3->forward(y))));
  const int64_t kept = WindowClock::cached_after(clock.pos + T, W);
  keys = pad_rows(K.narrow(2, C + T - kept, kept), 2 * W);
  values = pad_rows(V.narrow(2, C + T - kept, kept), 2 * W);
  return y;
}

// The tokens' reads of the state, block by block, and the state's update at every block end.
// xn [B, T, D]; K, V [B, H, C + T, Dh] as in forward. Returns A_ts [B, H, T, Dh].
Tensor BlockRecurrentLayer::recurrence(const Tensor& xn, const Tensor& K, const Tensor& V,
                                       const WindowClock& clock, Tensor& cell) const {
  const int64_t T = xn.size(1), W = config.window;
  const int64_t C = WindowClock::cached_after(clock.pos, W), first = clock.pos - C;
  const Tensor q2 = query(*wq2, scale2, xn);  // [B, H, T, Dh]
  AttentionOptions unmasked;
  unmasked.causal = false;
  unmasked.scale = 1.0;
  std::vector<Tensor> reads;
  for (int64_t t0 = 0; t0 < T;) {
    const int64_t t1 = std::min(T, t0 + W - (clock.pos + t0) % W);  // the end of t0's block
    const Tensor s = norm2->forward(cell) + state_ids;              // [B, S, D]
    const Tensor ks = unit(sk->forward(s)), vs = split(sv->forward(s));
    reads.push_back(attention(q2.narrow(2, t0, t1 - t0), ks, vs, unmasked));
    if ((clock.pos + t1) % W == 0) {
      // The block is complete: the state reads itself and the previous and current blocks.
      const int64_t end = C + t1, begin = std::max<int64_t>(0, end - 2 * W);
      const Tensor self = attention(query(*sq, state_scale, s), ks, vs, unmasked);
      const Tensor block = attend_from(
          query(*sq2, state_scale2, s), K.narrow(2, begin, end - begin),
          V.narrow(2, begin, end - begin), unmasked, Tensor(), first + begin, clock.start);
      cell = next_state(cell, concat({merge(self), merge(block)}, 2));
    }
    t0 = t1;
  }
  return reads.size() == 1 ? reads[0] : concat(reads, 2);
}

Tensor BlockRecurrentLayer::next_state(const Tensor& cell, const Tensor& h) const {
  switch (config.cell) {
    case CellKind::skip:
      return gate1->forward(cell, so->forward(h), h);
    case CellKind::dual: {
      const Tensor c = gate1->forward(cell, so->forward(h), h);
      const Tensor u = relu(sffn1->forward(norm4->forward(c)));
      return gate2->forward(c, sffn2->forward(u), u);
    }
    case CellKind::single: {
      const Tensor u = relu(sffn1->forward(h));
      return gate1->forward(cell, tanh(sffn2->forward(u)), u);
    }
  }
  return Tensor();
}

double BlockRecurrentLayer::flops_per_token(int64_t context) const {
  const double D = double(config.d_model), HD = double(config.heads * config.head_dim);
  const double F = double(config.mlp_hidden), S = double(config.states), W = double(config.window);
  const double keys = double(std::min<int64_t>(context, config.window + 1));
  // q, k, v, o and the FFN; attention: q.k and p.v over the visible keys.
  double f = 2 * (3 * D * HD + (config.recurrent ? 2 : 1) * HD * D + 2 * D * F) + 4 * keys * HD;
  if (!config.recurrent) return f;
  f += 2 * D * HD + 4 * S * HD;  // the tokens' second query and their read of the S states
  // Per block, for S state rows: four projections, the state output, the cell's MLP and gates,
  // and the two reads (S keys and 2W keys); spread over the block's W tokens.
  double block = 2 * S * 4 * D * HD + 4 * S * S * HD + 4 * S * 2 * W * HD;
  if (config.cell != CellKind::single) block += 2 * S * 2 * HD * D;  // W'_o
  if (config.cell != CellKind::skip)                                 // the cell's MLP
    block += 2 * S * (config.cell == CellKind::dual ? D : 2 * HD) * F + 2 * S * F * D;
  if (config.gate == GateKind::lstm) {  // W_f and W_i of each gate, on the gate's input
    block += 2 * S * 2 * (config.cell == CellKind::single ? F : 2 * HD) * D;
    if (config.cell == CellKind::dual) block += 2 * S * 2 * F * D;
  }
  return f + block / W;
}

}  // namespace rill
