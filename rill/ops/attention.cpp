// Attention ops: validate, lay the inputs out contiguously (the cpu forward reads k and v where
// they are when it can: a KV cache in its growing buffer), dispatch, and record the hand-written
// backward (which saves only q, k, v, the output and the per-row logsumexp).
// attention_naive composes the same function from matmul, masked_fill and softmax.
//
// Shapes: B batch, H heads, Tq queries, Tk keys, D query/key head dim, Dv value head dim,
// NB = num_buckets.
#include "rill/ops/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "rill/backend/cpu/attention.h"
#include "rill/backend/ref/attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/matmul.h"
#include "rill/ops/op_util.h"
#include "rill/ops/softmax.h"

namespace rill {

namespace {

// T5's bucketing needs at least one exact bucket per direction and a log range beyond it.

std::string qkv_str(const Tensor& q, const Tensor& k, const Tensor& v) {
  return fmt::format("q {} {}, k {} {}, v {} {}", dtype_name(q.dtype()), shape_str(q.shape()),
                     dtype_name(k.dtype()), shape_str(k.shape()), dtype_name(v.dtype()),
                     shape_str(v.shape()));
}

// Validates the inputs and returns the options with the scale resolved.
AttentionOptions check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionOptions& opt, const Tensor& rel_bias) {
  check_defined(op, q, "q");
  check_defined(op, k, "k");
  check_defined(op, v, "v");
  const std::string shapes = qkv_str(q, k, v);
  RILL_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
             "[{}] expects q [B,H,Tq,D], k [B,H,Tk,D], v [B,H,Tk,Dv]; got {}", op, shapes);
  RILL_CHECK(is_floating(q.dtype()) && k.dtype() == q.dtype() && v.dtype() == q.dtype(),
             "[{}] q, k and v must share one floating dtype (f32 or f64); got {}", op, shapes);
  RILL_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0) && k.size(1) == q.size(1) &&
                 v.size(1) == q.size(1),
             "[{}] batch and head counts must match; got {}", op, shapes);
  RILL_CHECK(k.size(3) == q.size(3), "[{}] q and k head dims differ; got {}", op, shapes);
  RILL_CHECK(v.size(2) == k.size(2), "[{}] k and v lengths (Tk) differ; got {}", op, shapes);
  RILL_CHECK(q.size(3) > 0, "[{}] head dim D must be positive; got {}", op, shapes);
  RILL_CHECK(opt.window >= 0, "[{}] window must be >= 0 (0: none), got {} ({})", op, opt.window,
             shapes);
  RILL_CHECK(std::isfinite(opt.scale), "[{}] scale must be finite, got {} ({})", op, opt.scale,
             shapes);
  if (rel_bias.defined()) {
    check_t5(op, !opt.causal, opt.num_buckets, opt.max_distance);
    RILL_CHECK(rel_bias.dtype() == q.dtype(), "[{}] rel_bias must be {} like q, got {} {} ({})", op,
               dtype_name(q.dtype()), dtype_name(rel_bias.dtype()), shape_str(rel_bias.shape()),
               shapes);
    RILL_CHECK(
        rel_bias.dim() == 2 && rel_bias.size(0) == opt.num_buckets && rel_bias.size(1) == q.size(1),
        "[{}] rel_bias must be [num_buckets, H] = [{}, {}], got {} ({})", op, opt.num_buckets,
        q.size(1), shape_str(rel_bias.shape()), shapes);
  }
  AttentionOptions resolved = opt;
  if (resolved.scale == 0) resolved.scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  return resolved;
}

struct AttentionBackward : Node {
  Tensor q, k, v, rel_bias;  // contiguous; rel_bias undefined when absent
  Tensor out, lse;           // [B,H,Tq,Dv], [B,H,Tq]
  AttentionOptions opt;      // scale resolved
  AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor rel_bias, Tensor out, Tensor lse,
                    const AttentionOptions& opt)
      : q(std::move(q)),
        k(std::move(k)),
        v(std::move(v)),
        rel_bias(std::move(rel_bias)),
        out(std::move(out)),
        lse(std::move(lse)),
        opt(opt) {}
  const char* name() const override { return "attention"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    Tensor dout = g[0].contiguous();
    Tensor dq = new_output(q.shape(), q.dtype());
    Tensor dk = new_output(k.shape(), k.dtype());
    Tensor dv = new_output(v.shape(), v.dtype());
    const bool bias = rel_bias.defined();
    Tensor db = bias && needs_grad(3) ? new_output(rel_bias.shape(), q.dtype()) : Tensor();
    RILL_KERNEL(attention_backward, q, k, v, rel_bias, out, lse, dout, opt, dq, dk, dv, db);
    std::vector<Tensor> grads{needs_grad(0) ? dq : Tensor(), needs_grad(1) ? dk : Tensor(),
                              needs_grad(2) ? dv : Tensor()};
    if (bias) grads.push_back(db);
    return grads;
  }
};

struct RotaryBackward : Node {
  int64_t offset;
  double base;
  RotaryBackward(int64_t offset, double base) : offset(offset), base(base) {}
  const char* name() const override { return "rotary"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    // A rotation's transpose is the rotation by minus the angle.
    Tensor dy = g[0].contiguous();
    Tensor dx = new_output(dy.shape(), dy.dtype());
    RILL_KERNEL(rotary, dy, offset, base, true, dx);
    return {dx};
  }
};

// Whether the cpu forward can read t [B,H,T,C] where it lies: rows of C packed one after another,
// and the (b, h) slices one stride apart. A KV cache's view of the buffer it grows in (append)
// is such a view; copying it whole every token would cost as much as the attention itself.
bool readable_in_place(const Tensor& t) {
  const int64_t H = t.size(1), C = t.size(3);
  return (C <= 1 || t.stride(3) == 1) && (t.size(2) <= 1 || t.stride(2) == C) &&
         (t.size(0) <= 1 || H <= 1 || t.stride(0) == H * t.stride(1));
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt_in,
                 const Tensor& rel_bias) {
  const AttentionOptions opt = check_attention("attention", q, k, v, opt_in, rel_bias);
  Tensor qc = q.detach().contiguous(), kc = k.detach(), vc = v.detach();
  if (active_backend() != Backend::cpu || !readable_in_place(kc) || !readable_in_place(vc))
    kc = kc.contiguous(), vc = vc.contiguous();
  Tensor bc = rel_bias.defined() ? rel_bias.detach().contiguous() : Tensor();
  const DType dt = q.dtype();
  Tensor out = new_output({q.size(0), q.size(1), q.size(2), v.size(3)}, dt);
  Tensor lse = new_output({q.size(0), q.size(1), q.size(2)}, dt);
  RILL_KERNEL(attention_forward, qc, kc, vc, bc, opt, out, lse);
  auto node = [&] {
    return std::make_shared<AttentionBackward>(qc, kc.contiguous(), vc.contiguous(), bc,
                                               out.detach(), lse, opt);
  };
  if (rel_bias.defined()) {
    if (should_record({&q, &k, &v, &rel_bias})) record(node(), {&q, &k, &v, &rel_bias}, {&out});
  } else if (should_record({&q, &k, &v})) {
    record(node(), {&q, &k, &v}, {&out});
  }
  return out;
}

Tensor attention_naive(const Tensor& q, const Tensor& k, const Tensor& v,
                       const AttentionOptions& opt_in, const Tensor& rel_bias) {
  const AttentionOptions opt = check_attention("attention_naive", q, k, v, opt_in, rel_bias);
  const int64_t H = q.size(1), Tq = q.size(2), Tk = k.size(2);
  Tensor s = mul(matmul(q, k.transpose(-2, -1)), opt.scale);  // [B,H,Tq,Tk]
  if (rel_bias.defined()) {
    std::vector<int64_t> idx(Tq * Tk);
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tk; ++j)
        idx[i * Tk + j] =
            t5_bucket(i + opt.q_offset - j, !opt.causal, opt.num_buckets, opt.max_distance);
    Tensor bias = index_select(rel_bias, 0, Tensor::from_vector(idx, {Tq * Tk}));  // [Tq*Tk, H]
    s = add(s, bias.view({Tq, Tk, H}).permute({2, 0, 1}));  // [H,Tq,Tk], broadcast over B
  }
  // Hidden keys get -inf. A row with no visible key is left unmasked (so softmax stays finite)
  // and its probabilities are multiplied by 0 afterwards.
  std::vector<double> hide(Tq * Tk), keep(Tq * Tk);
  bool any_hidden = false, any_empty = false;
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t pos = i + opt.q_offset;
    bool row_visible = false;
    for (int64_t j = 0; j < Tk; ++j) {
      const bool vis = (!opt.causal || j <= pos) && (opt.window <= 0 || j > pos - opt.window);
      keep[i * Tk + j] = vis ? 1 : 0;
      row_visible = row_visible || vis;
    }
    for (int64_t j = 0; j < Tk; ++j) {
      hide[i * Tk + j] = row_visible && keep[i * Tk + j] == 0 ? 1 : 0;
      any_hidden = any_hidden || hide[i * Tk + j] != 0;
    }
    any_empty = any_empty || !row_visible;
  }
  if (any_hidden)
    s = masked_fill(s, Tensor::from_vector(hide, {Tq, Tk}),
                    -std::numeric_limits<double>::infinity());
  Tensor p = softmax(s, -1);
  if (any_empty) p = mul(p, Tensor::from_vector(keep, {Tq, Tk}).to(q.dtype()));
  return matmul(p, v);
}

Tensor rotary(const Tensor& x, int64_t offset, double base) {
  check_floating("rotary", x);
  RILL_CHECK(x.dim() == 4, "[rotary] expects x [B,H,T,D], got {} {}", dtype_name(x.dtype()),
             shape_str(x.shape()));
  RILL_CHECK(x.size(3) % 2 == 0, "[rotary] head dim D must be even, got x {}",
             shape_str(x.shape()));
  RILL_CHECK(std::isfinite(base) && base > 0, "[rotary] base must be positive, got {} (x {})", base,
             shape_str(x.shape()));
  Tensor xc = x.detach().contiguous();
  Tensor y = new_output(x.shape(), x.dtype());
  RILL_KERNEL(rotary, xc, offset, base, false, y);
  if (should_record({&x})) record(std::make_shared<RotaryBackward>(offset, base), {&x}, {&y});
  return y;
}

}  // namespace rill
