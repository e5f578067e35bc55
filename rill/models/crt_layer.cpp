// The CRT segment layer: pre-norm attention over the segment's rows so far, then the MLP.
#include "rill/models/crt_layer.h"

#include <algorithm>

#include "rill/nn/init.h"
#include "rill/ops/attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"

namespace rill {

namespace {

// Causal attention of q (rows first .. first + n - 1) over k, v (rows 0 .. first + n - 1), with
// stream b blind to rows pinned .. hidden_to[b] - 1. The kernel takes one mask for the batch,
// so a stream with hidden rows runs alone on its visible rows; q_offset moves down by the rows
// removed, which keeps "a key is visible iff it is not after the query".
Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, int64_t first, int64_t pinned,
              const std::vector<int64_t>& hidden_to) {
  AttentionOptions opt;
  opt.q_offset = first;
  const bool all_visible =
      std::all_of(hidden_to.begin(), hidden_to.end(), [&](int64_t h) { return h <= pinned; });
  if (all_visible) return attention(q, k, v, opt);
  const int64_t rows = k.size(2);
  std::vector<Tensor> out;
  for (int64_t b = 0; b < q.size(0); ++b) {
    const int64_t to = std::min(hidden_to[size_t(b)], first);  // a row always sees itself
    const Tensor kb = k.narrow(0, b, 1), vb = v.narrow(0, b, 1), qb = q.narrow(0, b, 1);
    if (to <= pinned) {
      out.push_back(attention(qb, kb, vb, opt));
      continue;
    }
    auto visible = [&](const Tensor& t) {
      const Tensor tail = t.narrow(2, to, rows - to);
      return pinned > 0 ? concat({t.narrow(2, 0, pinned), tail}, 2) : tail;
    };
    AttentionOptions o = opt;
    o.q_offset = first - (to - pinned);
    out.push_back(attention(qb, visible(kb), visible(vb), o));
  }
  return concat(out, 0);
}

}  // namespace

CrtLayer::CrtLayer(const CrtLayerConfig& c, uint64_t seed) : config(c) {
  norm1 = register_module("norm1", nn::make_norm(c.norm, c.d_model, c.dtype));
  proj = register_module(
      "attn", std::make_shared<MultiHeadProjection>(c.d_model, c.heads, c.head_dim, c.head_dim,
                                                    nn::derive_seed(seed, 0), false, c.dtype));
  norm2 = register_module("norm2", nn::make_norm(c.norm, c.d_model, c.dtype));
  mlp = register_module("mlp", std::make_shared<nn::MLP>(c.d_model, c.mlp_hidden, c.mlp,
                                                         nn::derive_seed(seed, 1), true, c.dtype));
}

Tensor CrtLayer::forward(const Tensor& x, int64_t first, Tensor& keys, Tensor& values,
                         int64_t pinned, const std::vector<int64_t>& hidden_to) const {
  const Tensor xn = norm1->forward(x);
  Tensor q = proj->q(xn), k = proj->k(xn);  // [B, H, n, Dh]
  const Tensor v = proj->v(xn);
  if (config.rotary) q = rotary(q, first), k = rotary(k, first);
  keys = first > 0 ? concat({keys, k}, 2) : k;  // [B, H, first + n, Dh]
  values = first > 0 ? concat({values, v}, 2) : v;
  const Tensor y = x + proj->out(attend(q, keys, values, first, pinned, hidden_to));
  return y + mlp->forward(norm2->forward(y));
}

double CrtLayer::flops_per_row(double keys) const {
  const double d = double(config.d_model), hd = double(config.heads * config.head_dim);
  const double mlp_mats = config.mlp == nn::MLPKind::swiglu ? 3.0 : 2.0;
  return 2.0 * 4.0 * d * hd                                // q, k, v, o projections
         + 2.0 * mlp_mats * d * double(config.mlp_hidden)  // the MLP's matrices
         + 2.0 * 2.0 * keys * hd;                          // q.k and the weighted sum of v
}

}  // namespace rill
