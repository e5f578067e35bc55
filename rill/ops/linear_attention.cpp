// Linear attention ops: validate, flatten (B, H) into N = B*H contiguous sequences, dispatch to
// the ref oracle or the chosen cpu form, and record one node whose backward receives gradients
// of both outputs (out and s_final).
//
// Shapes: B batch, H heads, T tokens, Dk key/query features, Dv value size.
#include "rill/ops/linear_attention.h"

#include "rill/backend/cpu/linear_attention.h"
#include "rill/backend/ref/linear_attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

constexpr const char* kOp = "linear_attention";

std::string shape_or_none(const Tensor& t) {
  return t.defined() ? shape_str(t.shape()) : std::string("(none)");
}

std::string all_shapes(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0) {
  return fmt::format("q {} k {} v {} s0 {}", shape_or_none(q), shape_or_none(k), shape_or_none(v),
                     shape_or_none(s0));
}

// Shared checks; causal also needs q's T to equal k's (non-causal lets the query count differ).
void validate(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0, bool causal) {
  check_defined(kOp, q, "q");
  check_defined(kOp, k, "k");
  check_defined(kOp, v, "v");
  const std::string shapes = all_shapes(q, k, v, s0);
  RILL_CHECK(is_floating(q.dtype()), "[linear_attention] expects f32 or f64, got q {} ({})",
             dtype_name(q.dtype()), shapes);
  for (const Tensor* t : {&k, &v, &s0})
    RILL_CHECK(!t->defined() || t->dtype() == q.dtype(),
               "[linear_attention] dtypes differ: q {}, k {}, v {}, s0 {} ({})",
               dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype()),
               s0.defined() ? dtype_name(s0.dtype()) : "(none)", shapes);
  RILL_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && (!s0.defined() || s0.dim() == 4),
             "[linear_attention] expects q, k [B,H,T,Dk], v [B,H,T,Dv], s0 [B,H,Dk,Dv]; got {}",
             shapes);
  RILL_CHECK(q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(1) == k.size(1) &&
                 q.size(1) == v.size(1),
             "[linear_attention] B and H must match across q, k, v; got {}", shapes);
  RILL_CHECK(k.size(2) == v.size(2) && (!causal || q.size(2) == k.size(2)),
             "[linear_attention] T must match across {}; got {}", causal ? "q, k, v" : "k, v",
             shapes);
  RILL_CHECK(q.size(3) == k.size(3), "[linear_attention] Dk of q ({}) and k ({}) differ; got {}",
             q.size(3), k.size(3), shapes);
  if (s0.defined()) {
    const Shape want = {q.size(0), q.size(1), k.size(3), v.size(3)};
    RILL_CHECK(s0.shape() == want, "[linear_attention] s0 must be [B,H,Dk,Dv] = {}; got {}",
               shape_str(want), shapes);
  }
}

// A detached, contiguous [N, rows, cols] view of a [B, H, rows, cols] tensor.
Tensor flat(const Tensor& t) {
  if (!t.defined()) return t;
  return t.detach().contiguous().view({t.size(0) * t.size(1), t.size(2), t.size(3)});
}

void forward_kernel(LinearAttentionForm form, int64_t chunk, const Tensor& q, const Tensor& k,
                    const Tensor& v, const Tensor& s0, const Tensor& out, const Tensor& sf) {
  if (active_backend() == Backend::ref)
    ref::linear_attention_forward(q, k, v, s0, out, sf);
  else if (form == LinearAttentionForm::recurrent)
    cpu::linear_attention_recurrent_forward(q, k, v, s0, out, sf);
  else
    cpu::linear_attention_chunked_forward(q, k, v, s0, chunk, out, sf);
}

void backward_kernel(LinearAttentionForm form, int64_t chunk, const Tensor& q, const Tensor& k,
                     const Tensor& v, const Tensor& s0, const Tensor& g, const Tensor& dsf,
                     const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& ds0) {
  if (active_backend() == Backend::ref)
    ref::linear_attention_backward(q, k, v, s0, g, dsf, dq, dk, dv, ds0);
  else if (form == LinearAttentionForm::recurrent)
    cpu::linear_attention_recurrent_backward(q, k, v, s0, g, dsf, dq, dk, dv, ds0);
  else
    cpu::linear_attention_chunked_backward(q, k, v, s0, g, dsf, chunk, dq, dk, dv, ds0);
}

struct CausalLinearAttentionBackward : Node {
  Tensor q, k, v, s0;            // [N,T,Dk], [N,T,Dk], [N,T,Dv], [N,Dk,Dv] or undefined; contiguous
  Shape qshape, vshape, sshape;  // the caller's [B,H,T,Dk], [B,H,T,Dv], [B,H,Dk,Dv]
  LinearAttentionForm form;
  int64_t chunk;
  Backend backend;  // the backward pairs with the kernels that ran the forward
  const char* name() const override { return "causal_linear_attention"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    BackendGuard guard(backend);
    // grads[0] is dL/d out, grads[1] dL/d s_final (zeros when the loss does not use it).
    Tensor g = flat(grads[0]), dsf = flat(grads[1]);
    Tensor dq = new_output(qshape, q.dtype()), dk = new_output(qshape, q.dtype());
    Tensor dv = new_output(vshape, q.dtype());
    Tensor ds0 = needs_grad(3) ? new_output(sshape, q.dtype()) : Tensor();
    backward_kernel(form, chunk, q, k, v, s0, g, dsf, flat(dq), flat(dk), flat(dv), flat(ds0));
    return {needs_grad(0) ? dq : Tensor(), needs_grad(1) ? dk : Tensor(),
            needs_grad(2) ? dv : Tensor(), ds0};
  }
};

}  // namespace

std::pair<Tensor, Tensor> causal_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor& s0, LinearAttentionForm form,
                                                  int64_t chunk) {
  validate(q, k, v, s0, true);
  RILL_CHECK(chunk > 0, "[linear_attention] chunk must be positive, got {} ({})", chunk,
             all_shapes(q, k, v, s0));
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), dk = q.size(3), dv = v.size(3);
  Tensor qf = flat(q), kf = flat(k), vf = flat(v), sf0 = flat(s0);
  Tensor out = new_output({b, h, t, dv}, q.dtype());
  Tensor s_final = new_output({b, h, dk, dv}, q.dtype());
  forward_kernel(form, chunk, qf, kf, vf, sf0, flat(out), flat(s_final));
  if (should_record({&q, &k, &v, &s0})) {
    auto node = std::make_shared<CausalLinearAttentionBackward>();
    node->q = qf, node->k = kf, node->v = vf, node->s0 = sf0;
    node->qshape = q.shape(), node->vshape = v.shape(), node->sshape = s_final.shape();
    node->form = form, node->chunk = chunk, node->backend = active_backend();
    record(node, {&q, &k, &v, &s0}, {&out, &s_final});
  }
  return {out, s_final};
}

Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v) {
  return linear_attention_noncausal(q, k, v, Tensor());
}

Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& s0) {
  validate(q, k, v, s0, false);
  // Associativity: q (k^T v) costs O(T Dk Dv), never forming the T x T attention.
  Tensor kv = matmul(k.transpose(2, 3), v);  // [B,H,Dk,Dv]
  if (s0.defined()) kv = add(kv, s0);
  return matmul(q, kv);
}

}  // namespace rill
