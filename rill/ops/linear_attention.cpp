// Linear attention ops, the gated-state op's forms: validate (one function for every form),
// flatten (B, H) into N = B*H contiguous sequences and broadcast the log-decay to [N,T],
// dispatch to the ref oracle or the chosen cpu form, and record one node whose backward
// receives gradients of both outputs (out and s_final). The step form shares the validation and
// the kernel arguments, and runs without a tape.
//
// Shapes: B batch, H heads, T tokens, Dk key/query features, Dv value size.
#include "rill/ops/linear_attention.h"

#include "rill/autograd/grad_mode.h"
#include "rill/backend/cpu/linear_attention.h"
#include "rill/backend/ref/linear_attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/matmul.h"
#include "rill/ops/op_util.h"
#include "rill/ops/reduce.h"

namespace rill {

namespace {

constexpr const char* kOp = "linear_attention";
constexpr const char* kStepOp = "linear_attention_step";

std::string shape_or_none(const Tensor& t) {
  return t.defined() ? shape_str(t.shape()) : std::string("(none)");
}

// The inputs' shapes for error messages; the step form calls its state s.
std::string all_shapes(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                       const Tensor& g, const char* s0_name = "s0") {
  std::string s = fmt::format("q {} k {} v {} {} {}", shape_or_none(q), shape_or_none(k),
                              shape_or_none(v), s0_name, shape_or_none(s0));
  if (g.defined()) s += fmt::format(" g {}", shape_str(g.shape()));
  return s;
}

// Which form is validated: the sequence forms take q, k [B,H,T,Dk] (the non-causal one lets the
// query count differ), the step form q, k [B,H,Dk]; s0 is the step's state s.
enum class Kind { causal, noncausal, step };

// The op's one validation. Error messages start with the op's name and show every shape.
void validate(Kind kind, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
              const Tensor& g) {
  const char* op = kind == Kind::step ? kStepOp : kOp;
  check_defined(op, q, "q");
  check_defined(op, k, "k");
  check_defined(op, v, "v");
  if (kind == Kind::step) check_defined(op, s0, "s");
  // Formatted only when a check fails: the step form runs once per token.
  auto shapes = [&] { return all_shapes(q, k, v, s0, g, kind == Kind::step ? "s" : "s0"); };
  RILL_CHECK(is_floating(q.dtype()), "[{}] expects f32 or f64, got q {} ({})", op,
             dtype_name(q.dtype()), shapes());
  for (const Tensor* t : {&k, &v, &s0, &g})
    RILL_CHECK(!t->defined() || t->dtype() == q.dtype(),
               "[{}] dtypes differ: q {}, k {}, v {}, s0 {}, g {} ({})", op, dtype_name(q.dtype()),
               dtype_name(k.dtype()), dtype_name(v.dtype()),
               s0.defined() ? dtype_name(s0.dtype()) : "(none)",
               g.defined() ? dtype_name(g.dtype()) : "(none)", shapes());
  const int64_t rank = kind == Kind::step ? 3 : 4, d = rank - 1;  // d: the feature dim
  RILL_CHECK(
      q.dim() == rank && k.dim() == rank && v.dim() == rank && (!s0.defined() || s0.dim() == 4),
      "[{}] expects q, k {}, v {}, {} [B,H,Dk,Dv]; got {}", op,
      kind == Kind::step ? "[B,H,Dk]" : "[B,H,T,Dk]",
      kind == Kind::step ? "[B,H,Dv]" : "[B,H,T,Dv]", kind == Kind::step ? "s" : "s0", shapes());
  RILL_CHECK(q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(1) == k.size(1) &&
                 q.size(1) == v.size(1),
             "[{}] B and H must match across q, k, v; got {}", op, shapes());
  if (kind != Kind::step)
    RILL_CHECK(k.size(2) == v.size(2) && (kind == Kind::noncausal || q.size(2) == k.size(2)),
               "[{}] T must match across {}; got {}", op,
               kind == Kind::noncausal ? "k, v" : "q, k, v", shapes());
  RILL_CHECK(q.size(d) == k.size(d), "[{}] Dk of q ({}) and k ({}) differ; got {}", op, q.size(d),
             k.size(d), shapes());
  if (s0.defined()) {
    const Shape want = {q.size(0), q.size(1), k.size(d), v.size(d)};
    RILL_CHECK(s0.shape() == want, "[{}] {} must be [B,H,Dk,Dv] = {}; got {}", op,
               kind == Kind::step ? "s" : "s0", shape_str(want), shapes());
  }
  if (g.defined()) {
    RILL_CHECK(kind != Kind::noncausal, "[{}] the non-causal form has no decay; got {}", op,
               shapes());
    const Shape want =
        kind == Kind::step ? Shape{q.size(0), q.size(1)} : Shape{q.size(0), q.size(1), q.size(2)};
    bool ok = g.dim() <= static_cast<int64_t>(want.size());
    for (int64_t i = 1; ok && i <= g.dim(); ++i) {
      const int64_t gs = g.size(-i), ws = want[want.size() - i];
      ok = gs == ws || gs == 1;
    }
    RILL_CHECK(ok, "[{}] the log-decay g must broadcast to {} = {}; got {}", op,
               kind == Kind::step ? "[B,H]" : "[B,H,T]", shape_str(want), shapes());
  }
}

// A detached, contiguous [N, rows, cols] view of a [B, H, rows, cols] tensor.
Tensor flat(const Tensor& t) {
  if (!t.defined()) return t;
  return t.detach().contiguous().view({t.size(0) * t.size(1), t.size(2), t.size(3)});
}

// The log-decay broadcast to `full` ([B,H,T] or [B,H]), detached and contiguous as [N, len];
// refuses a positive value (gamma > 1 grows the state, and the kernels' exp assumes <= 0).
template <class Shapes>
Tensor flat_log_decay(const char* op, const Tensor& g, const Shape& full, int64_t n, int64_t len,
                      const Shapes& shapes) {
  if (!g.defined()) return g;
  Tensor f = g.detach().expand(full).contiguous().view({n, len});
  RILL_DISPATCH_FLOAT(f.dtype(), op, T, {
    const T* p = f.data<T>();
    for (int64_t i = 0; i < f.numel(); ++i)
      RILL_CHECK(!(p[i] > 0),
                 "[{}] the log-decay g must be <= 0 (gamma = exp(g) <= 1); found {} ({})", op,
                 static_cast<double>(p[i]), shapes());
  });
  return f;
}

void forward_kernel(LinearAttentionForm form, int64_t chunk, const GatedStateArgs& a,
                    const Tensor& out, const Tensor& sf) {
  if (active_backend() == Backend::ref)
    ref::linear_attention_forward(a, out, sf);
  else if (form == LinearAttentionForm::recurrent)
    cpu::linear_attention_recurrent_forward(a, out, sf);
  else
    cpu::linear_attention_chunked_forward(a, chunk, out, sf);
}

void backward_kernel(LinearAttentionForm form, int64_t chunk, const GatedStateArgs& a,
                     const Tensor& dout, const Tensor& dsf, const GatedStateGrads& grads) {
  if (active_backend() == Backend::ref)
    ref::linear_attention_backward(a, dout, dsf, grads);
  else if (form == LinearAttentionForm::recurrent)
    cpu::linear_attention_recurrent_backward(a, dout, dsf, grads);
  else
    cpu::linear_attention_chunked_backward(a, dout, dsf, chunk, grads);
}

struct CausalLinearAttentionBackward : Node {
  GatedStateArgs args;                   // flattened, contiguous, detached: [N,T,Dk] ... g [N,T]
  Shape qshape, vshape, sshape, gshape;  // the caller's [B,H,T,Dk], [B,H,T,Dv], [B,H,Dk,Dv], g's
  LinearAttentionForm form;
  int64_t chunk;
  Backend backend;  // the backward pairs with the kernels that ran the forward
  const char* name() const override { return "causal_linear_attention"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    BackendGuard guard(backend);
    const DType dt = args.q.dtype();
    // grads[0] is dL/d out, grads[1] dL/d s_final (zeros when the loss does not use it).
    Tensor dout = flat(grads[0]), dsf = flat(grads[1]);
    Tensor dq = new_output(qshape, dt), dk = new_output(qshape, dt);
    Tensor dv = new_output(vshape, dt);
    Tensor ds0 = needs_grad(3) ? new_output(sshape, dt) : Tensor();
    Tensor dg = args.g.defined() && needs_grad(4)
                    ? new_output({qshape[0], qshape[1], qshape[2]}, dt)
                    : Tensor();
    GatedStateGrads out{flat(dq), flat(dk), flat(dv), flat(ds0),
                        dg.defined() ? dg.view({args.n(), args.len()}) : Tensor()};
    backward_kernel(form, chunk, args, dout, dsf, out);
    return {needs_grad(0) ? dq : Tensor(), needs_grad(1) ? dk : Tensor(),
            needs_grad(2) ? dv : Tensor(), ds0, dg.defined() ? sum_to(dg, gshape) : Tensor()};
  }
};

}  // namespace

std::pair<Tensor, Tensor> causal_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor& s0,
                                                  const LinearAttentionDecay& decay,
                                                  LinearAttentionForm form, int64_t chunk) {
  const Tensor& g = decay.log_decay;
  validate(Kind::causal, q, k, v, s0, g);
  RILL_CHECK(chunk > 0, "[linear_attention] chunk must be positive, got {} ({})", chunk,
             all_shapes(q, k, v, s0, g));
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), dk = q.size(3), dv = v.size(3);
  GatedStateArgs args{
      flat(q), flat(k), flat(v), flat(s0),
      flat_log_decay(kOp, g, {b, h, t}, b * h, t, [&] { return all_shapes(q, k, v, s0, g); })};
  Tensor out = new_output({b, h, t, dv}, q.dtype());
  Tensor s_final = new_output({b, h, dk, dv}, q.dtype());
  forward_kernel(form, chunk, args, flat(out), flat(s_final));
  if (should_record({&q, &k, &v, &s0, &g})) {
    auto node = std::make_shared<CausalLinearAttentionBackward>();
    node->args = args;
    node->qshape = q.shape(), node->vshape = v.shape(), node->sshape = s_final.shape();
    if (g.defined()) node->gshape = g.shape();
    node->form = form, node->chunk = chunk, node->backend = active_backend();
    record(node, {&q, &k, &v, &s0, &g}, {&out, &s_final});
  }
  return {out, s_final};
}

std::pair<Tensor, Tensor> causal_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor& s0, LinearAttentionForm form,
                                                  int64_t chunk) {
  return causal_linear_attention(q, k, v, s0, LinearAttentionDecay{}, form, chunk);
}

Tensor linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s,
                             const LinearAttentionDecay& decay) {
  const Tensor& g = decay.log_decay;
  validate(Kind::step, q, k, v, s, g);
  RILL_CHECK(s.is_contiguous(), "[{}] the state must be contiguous, got strides {}", kStepOp,
             shape_str(s.strides()));
  RILL_CHECK(
      !(GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad() ||
                                   s.requires_grad() || (g.defined() && g.requires_grad()))),
      "[{}] updates the state in place and cannot be recorded; run it under NoGradGuard", kStepOp);
  const int64_t b = q.size(0), h = q.size(1);
  // The step kernels take the token's tensors as they are (no views: this runs once per token
  // and layer) and the log-decay broadcast to [N, 1].
  GatedStateArgs args{
      q.contiguous(), k.contiguous(), v.contiguous(), Tensor(),
      flat_log_decay(kStepOp, g, {b, h}, b * h, 1, [&] { return all_shapes(q, k, v, s, g, "s"); })};
  Tensor out = new_output(v.shape(), v.dtype());
  RILL_KERNEL(linear_attention_step, args, s, out);
  return out;
}

Tensor linear_attention_step(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s) {
  return linear_attention_step(q, k, v, s, LinearAttentionDecay{});
}

Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v) {
  return linear_attention_noncausal(q, k, v, Tensor());
}

Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& s0) {
  validate(Kind::noncausal, q, k, v, s0, Tensor());
  // Associativity: q (k^T v) costs O(T Dk Dv), never forming the T x T attention.
  Tensor kv = matmul(k.transpose(2, 3), v);  // [B,H,Dk,Dv]
  if (s0.defined()) kv = add(kv, s0);
  return matmul(q, kv);
}

}  // namespace rill
