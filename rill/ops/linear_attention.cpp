// Linear attention ops, the gated-state op's forms: validate (one function for every form),
// flatten (B, H) into N = B*H contiguous sequences and broadcast the log-decay to [N,T],
// dispatch to the ref oracle or the chosen cpu form, and record one node whose backward
// receives gradients of both outputs (out and s_final). The step form shares the validation and
// the kernel arguments, and runs without a tape.
//
// Shapes: B batch, H heads, T tokens, Dk key/query features, Dv value size.
#include "rill/ops/linear_attention.h"

#include <algorithm>
#include <limits>

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
                       const LinearAttentionDecay& d, const char* s0_name = "s0") {
  std::string s = fmt::format("q {} k {} v {} {} {}", shape_or_none(q), shape_or_none(k),
                              shape_or_none(v), s0_name, shape_or_none(s0));
  if (d.log_decay.defined()) s += fmt::format(" g {}", shape_str(d.log_decay.shape()));
  if (d.key_log_decay.defined()) s += fmt::format(" ga {}", shape_str(d.key_log_decay.shape()));
  if (d.value_log_decay.defined()) s += fmt::format(" gb {}", shape_str(d.value_log_decay.shape()));
  if (d.resets.defined()) s += fmt::format(" resets {}", shape_str(d.resets.shape()));
  return s;
}

// Whether t broadcasts to want (numpy rules, t's rank at most want's).
bool broadcasts_to(const Tensor& t, const Shape& want) {
  bool ok = t.dim() <= static_cast<int64_t>(want.size());
  for (int64_t i = 1; ok && i <= t.dim(); ++i) {
    const int64_t ts = t.size(-i), ws = want[want.size() - i];
    ok = ts == ws || ts == 1;
  }
  return ok;
}

// Which form is validated: the sequence forms take q, k [B,H,T,Dk] (the non-causal one lets the
// query count differ), the step form q, k [B,H,Dk]; s0 is the step's state s.
enum class Kind { causal, noncausal, step };

// The op's one validation. Error messages start with the op's name and show every shape.
void validate(Kind kind, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
              const LinearAttentionDecay& decay) {
  const Tensor& g = decay.log_decay;
  const char* op = kind == Kind::step ? kStepOp : kOp;
  check_defined(op, q, "q");
  check_defined(op, k, "k");
  check_defined(op, v, "v");
  if (kind == Kind::step) check_defined(op, s0, "s");
  // Formatted only when a check fails: the step form runs once per token.
  auto shapes = [&] { return all_shapes(q, k, v, s0, decay, kind == Kind::step ? "s" : "s0"); };
  RILL_CHECK(is_floating(q.dtype()), "[{}] expects f32 or f64, got q {} ({})", op,
             dtype_name(q.dtype()), shapes());
  for (const Tensor* t : {&k, &v, &s0, &g, &decay.key_log_decay, &decay.value_log_decay})
    RILL_CHECK(
        !t->defined() || t->dtype() == q.dtype(),
        "[{}] dtypes differ: q {}, k {}, v {}, s0 {}, decays g {} ga {} gb {} ({})", op,
        dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype()),
        s0.defined() ? dtype_name(s0.dtype()) : "(none)",
        g.defined() ? dtype_name(g.dtype()) : "(none)",
        decay.key_log_decay.defined() ? dtype_name(decay.key_log_decay.dtype()) : "(none)",
        decay.value_log_decay.defined() ? dtype_name(decay.value_log_decay.dtype()) : "(none)",
        shapes());
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
  const bool step = kind == Kind::step;
  const Shape bh = step ? Shape{q.size(0), q.size(1)} : Shape{q.size(0), q.size(1), q.size(2)};
  auto with = [](Shape s, int64_t d) {
    s.push_back(d);
    return s;
  };
  const struct {
    const Tensor& t;
    const char* what;
    Shape want;
    const char* pattern;
  } decays[] = {
      {g, "the log-decay g", bh, step ? "[B,H]" : "[B,H,T]"},
      {decay.key_log_decay, "the key-side log-decay ga", with(bh, k.size(d)),
       step ? "[B,H,Dk]" : "[B,H,T,Dk]"},
      {decay.value_log_decay, "the value-side log-decay gb", with(bh, v.size(d)),
       step ? "[B,H,Dv]" : "[B,H,T,Dv]"},
  };
  for (const auto& dc : decays) {
    if (!dc.t.defined()) continue;
    RILL_CHECK(kind != Kind::noncausal, "[{}] the non-causal form has no decay; got {}", op,
               shapes());
    RILL_CHECK(broadcasts_to(dc.t, dc.want), "[{}] {} must broadcast to {} = {}; got {}", op,
               dc.what, dc.pattern, shape_str(dc.want), shapes());
  }
  if (decay.resets.defined()) {
    RILL_CHECK(kind != Kind::noncausal, "[{}] the non-causal form has no resets; got {}", op,
               shapes());
    const Shape want = step ? Shape{q.size(0)} : Shape{q.size(0), q.size(2)};
    RILL_CHECK(decay.resets.shape() == want, "[{}] resets must be {} = {}; got {}", op,
               step ? "[B]" : "[B,T]", shape_str(want), shapes());
  }
}

// A detached, contiguous [N, rows, cols] view of a [B, H, rows, cols] tensor.
Tensor flat(const Tensor& t) {
  if (!t.defined()) return t;
  return t.detach().contiguous().view({t.size(0) * t.size(1), t.size(2), t.size(3)});
}

// A log-decay broadcast to `full` ([B,H,T(,D)] or [B,H(,D)]), detached and contiguous as `flat`
// ([N,T(,D)]; the step form [N,1(,D)]): a view of g when it is already laid out so (the step
// form runs this once per token and layer), else a copy. Refuses a positive value (a decay > 1
// grows the state, and the kernels' exp assumes <= 0).
template <class Shapes>
Tensor flat_log_decay(const char* op, const Tensor& g, const Shape& full, const Shape& flat,
                      const Shapes& shapes) {
  if (!g.defined()) return g;
  Tensor f = g.detach().expand(full).contiguous().view(flat);
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

// Where the kernels find the decays: a scalar decay beside a vector one is folded into the
// vector (into ga when there is one, else gb: exp(g) a b^T = (exp(g) a) b^T), and a reset is a
// log-decay of -inf at its step (a decay of exactly 0), written into the vector when there is
// one, else into g (made of zeros when the caller gave none).
enum class Fold { none, key, value };

struct KernelDecays {
  Tensor g, ga, gb;  // what the kernels take (GatedStateArgs)
  Fold fold = Fold::none;
  Tensor reset;  // [N, len] 1 where a stream resets, in the op's dtype; undefined = none
};

// g [N,len], ga [N,len,Dk], gb [N,len,Dv]: the caller's decays, flat (possibly views of the
// caller's tensors: the one written here is copied first).
KernelDecays kernel_decays(Tensor g, Tensor ga, Tensor gb, Tensor reset) {
  KernelDecays out{g, ga, gb, Fold::none, reset};
  const bool vector = ga.defined() || gb.defined();
  if (!reset.defined() && !(vector && g.defined())) return out;  // nothing to fold or reset
  Tensor target;  // [N, len, D] or [N, len]: the decay written into, owned
  if (!vector) {
    target = out.g = g.defined() ? g.clone() : Tensor::zeros(reset.shape(), reset.dtype());
  } else {
    target = (ga.defined() ? out.ga : out.gb) = (ga.defined() ? ga : gb).clone();
    if (g.defined()) out.fold = ga.defined() ? Fold::key : Fold::value;
    out.g = Tensor();
  }
  const int64_t rows = target.size(0) * target.size(1);
  const int64_t width = target.dim() == 3 ? target.size(2) : 1;
  RILL_DISPATCH_FLOAT(target.dtype(), kOp, T, {
    T* tp = target.data<T>();
    const T* gp = vector && g.defined() ? g.data<T>() : nullptr;
    const T* rp = reset.defined() ? reset.data<T>() : nullptr;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t x = 0; x < width; ++x) {
        T& e = tp[r * width + x];
        if (gp) e += gp[r];
        if (rp && rp[r] != T(0)) e = -std::numeric_limits<T>::infinity();
      }
  });
  return out;
}

// The caller's gradient of one decay from the kernels': the sum over the last dim when the
// scalar was folded into a vector, zero at reset steps (that decay multiplied nothing), then
// summed to the caller's shape. kernel [N,len] or [N,len,D]; full the broadcast shape.
Tensor decay_grad(const Tensor& kernel, bool sum_last, const Tensor& reset, const Shape& full,
                  const Shape& user) {
  Tensor out = kernel;
  const int64_t rows = kernel.size(0) * kernel.size(1);
  const int64_t width = kernel.dim() == 3 ? kernel.size(2) : 1;
  if (sum_last) out = Tensor::empty({kernel.size(0), kernel.size(1)}, kernel.dtype());
  RILL_DISPATCH_FLOAT(kernel.dtype(), kOp, T, {
    const T* kp = kernel.data<T>();
    T* op = out.data<T>();
    const T* rp = reset.defined() ? reset.data<T>() : nullptr;
    for (int64_t r = 0; r < rows; ++r) {
      const bool zero = rp && rp[r] != T(0);
      if (sum_last) {
        double acc = 0;
        for (int64_t x = 0; x < width; ++x) acc += kp[r * width + x];
        op[r] = zero ? T(0) : static_cast<T>(acc);
      } else if (zero) {
        for (int64_t x = 0; x < width; ++x) op[r * width + x] = 0;
      }
    }
  });
  return sum_to(out.view(full), user);
}

struct CausalLinearAttentionBackward : Node {
  GatedStateArgs args;             // flattened, contiguous, detached: [N,T,Dk] ... g [N,T]
  Shape qshape, vshape, sshape;    // the caller's [B,H,T,Dk], [B,H,T,Dv], [B,H,Dk,Dv]
  Shape gshape, gashape, gbshape;  // the caller's decays' shapes (empty: not given)
  bool has_g = false, has_ga = false, has_gb = false;
  Fold fold = Fold::none;
  Tensor reset;  // [N,T] mask or undefined
  LinearAttentionForm form;
  int64_t chunk;
  Backend backend;  // the backward pairs with the kernels that ran the forward
  const char* name() const override { return "causal_linear_attention"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    BackendGuard guard(backend);
    const DType dt = args.q.dtype();
    const int64_t b = qshape[0], h = qshape[1], t = qshape[2], dk = qshape[3], dv = vshape[3];
    // grads[0] is dL/d out, grads[1] dL/d s_final (zeros when the loss does not use it).
    Tensor dout = flat(grads[0]), dsf = flat(grads[1]);
    Tensor dq = new_output(qshape, dt), dk_ = new_output(qshape, dt);
    Tensor dv_ = new_output(vshape, dt);
    Tensor ds0 = needs_grad(3) ? new_output(sshape, dt) : Tensor();
    const bool want_g = has_g && needs_grad(4), want_ga = has_ga && needs_grad(5);
    const bool want_gb = has_gb && needs_grad(6);
    GatedStateGrads out{flat(dq), flat(dk_), flat(dv_), flat(ds0), Tensor(), Tensor(), Tensor()};
    if (args.g.defined() && want_g) out.dg = new_output({b * h, t}, dt);
    if (args.ga.defined() && (want_ga || (want_g && fold == Fold::key)))
      out.dga = new_output({b * h, t, dk}, dt);
    if (args.gb.defined() && (want_gb || (want_g && fold == Fold::value)))
      out.dgb = new_output({b * h, t, dv}, dt);
    backward_kernel(form, chunk, args, dout, dsf, out);
    Tensor dg, dga, dgb;
    if (want_g) {
      const Tensor& from = fold == Fold::key ? out.dga : fold == Fold::value ? out.dgb : out.dg;
      dg = decay_grad(from, fold != Fold::none, reset, {b, h, t}, gshape);
    }
    if (want_ga) dga = decay_grad(out.dga, false, reset, {b, h, t, dk}, gashape);
    if (want_gb) dgb = decay_grad(out.dgb, false, reset, {b, h, t, dv}, gbshape);
    return {needs_grad(0) ? dq : Tensor(),
            needs_grad(1) ? dk_ : Tensor(),
            needs_grad(2) ? dv_ : Tensor(),
            ds0,
            dg,
            dga,
            dgb};
  }
};

}  // namespace

std::pair<Tensor, Tensor> causal_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor& s0,
                                                  const LinearAttentionDecay& decay,
                                                  LinearAttentionForm form, int64_t chunk) {
  validate(Kind::causal, q, k, v, s0, decay);
  auto shapes = [&] { return all_shapes(q, k, v, s0, decay); };
  RILL_CHECK(chunk > 0, "[linear_attention] chunk must be positive, got {} ({})", chunk, shapes());
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), dk = q.size(3), dv = v.size(3);
  const Tensor &g = decay.log_decay, &ga = decay.key_log_decay, &gb = decay.value_log_decay;
  const KernelDecays kd =
      kernel_decays(flat_log_decay(kOp, g, {b, h, t}, {b * h, t}, shapes),
                    flat_log_decay(kOp, ga, {b, h, t, dk}, {b * h, t, dk}, shapes),
                    flat_log_decay(kOp, gb, {b, h, t, dv}, {b * h, t, dv}, shapes),
                    flat_resets(decay.resets, h, q.dtype()));
  GatedStateArgs args{flat(q), flat(k), flat(v), flat(s0), kd.g, kd.ga, kd.gb};
  Tensor out = new_output({b, h, t, dv}, q.dtype());
  Tensor s_final = new_output({b, h, dk, dv}, q.dtype());
  forward_kernel(form, chunk, args, flat(out), flat(s_final));
  if (should_record({&q, &k, &v, &s0, &g, &ga, &gb})) {
    auto node = std::make_shared<CausalLinearAttentionBackward>();
    node->args = args;
    node->qshape = q.shape(), node->vshape = v.shape(), node->sshape = s_final.shape();
    node->has_g = g.defined(), node->has_ga = ga.defined(), node->has_gb = gb.defined();
    if (g.defined()) node->gshape = g.shape();
    if (ga.defined()) node->gashape = ga.shape();
    if (gb.defined()) node->gbshape = gb.shape();
    node->fold = kd.fold, node->reset = kd.reset;
    node->form = form, node->chunk = chunk, node->backend = active_backend();
    record(node, {&q, &k, &v, &s0, &g, &ga, &gb}, {&out, &s_final});
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
  validate(Kind::step, q, k, v, s, decay);
  RILL_CHECK(s.is_contiguous(), "[{}] the state must be contiguous, got strides {}", kStepOp,
             shape_str(s.strides()));
  const Tensor &g = decay.log_decay, &ga = decay.key_log_decay, &gb = decay.value_log_decay;
  RILL_CHECK(!(GradMode::is_enabled() &&
               (q.requires_grad() || k.requires_grad() || v.requires_grad() || s.requires_grad() ||
                (g.defined() && g.requires_grad()) || (ga.defined() && ga.requires_grad()) ||
                (gb.defined() && gb.requires_grad()))),
             "[{}] updates the state in place and cannot be recorded; run it under NoGradGuard",
             kStepOp);
  const int64_t b = q.size(0), h = q.size(1), dk = q.size(2), dv = v.size(2);
  auto shapes = [&] { return all_shapes(q, k, v, s, decay, "s"); };
  // The step kernels take the token's tensors as they are (no views: this runs once per token
  // and layer) and the decays broadcast to [N, 1(, D)].
  const Tensor resets = decay.resets.defined() ? decay.resets.reshape({b, 1}) : Tensor();
  const KernelDecays kd =
      kernel_decays(flat_log_decay(kStepOp, g, {b, h}, {b * h, 1}, shapes),
                    flat_log_decay(kStepOp, ga, {b, h, dk}, {b * h, 1, dk}, shapes),
                    flat_log_decay(kStepOp, gb, {b, h, dv}, {b * h, 1, dv}, shapes),
                    flat_resets(resets, h, q.dtype()));
  GatedStateArgs args{q.contiguous(), k.contiguous(), v.contiguous(), Tensor(), kd.g, kd.ga, kd.gb};
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
  validate(Kind::noncausal, q, k, v, s0, LinearAttentionDecay{});
  // Associativity: q (k^T v) costs O(T Dk Dv), never forming the T x T attention.
  Tensor kv = matmul(k.transpose(2, 3), v);  // [B,H,Dk,Dv]
  if (s0.defined()) kv = add(kv, s0);
  return matmul(q, kv);
}

}  // namespace rill
