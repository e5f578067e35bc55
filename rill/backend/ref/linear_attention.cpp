// Reference gated-state op (causal linear attention with a scalar decay): one sequence at a time,
// one token at a time, the state S [Dk,Dv] updated and read out in scalar loops, the decay
// gamma_t = exp(g_t) taken from libm. The backward stores S_t for every t (T*Dk*Dv values) and
// applies the chain rule to the recurrence as written, step by step:
//   S_t = gamma_t S_{t-1} + k_t v_t^T,  out_t = S_t^T q_t,  s_final = S_{T-1}.
// With G = dL/d out and U_t = dL/dS_t (the total: S_t feeds out_t, S_{t+1} and, last, s_final),
//   U_{T-1} = dS_final + q_{T-1} G_{T-1}^T,   U_t = gamma_{t+1} U_{t+1} + q_t G_t^T,
//   dq_t = S_t G_t,  dk_t = U_t v_t,  dv_t = U_t^T k_t,  ds0 = gamma_0 U_0,
//   dg_t = gamma_t <U_t, S_{t-1}>        (d gamma_t / d g_t = gamma_t; <,> the Frobenius product).
// This direct form of dg is deliberately not the closed form the cpu kernels use, so that the
// two check each other.
#include "rill/backend/ref/linear_attention.h"

#include <cmath>
#include <vector>

namespace rill::ref {

namespace {

template <class T>
void forward_impl(const GatedStateArgs& args, const Tensor& out, const Tensor& s_final) {
  const int64_t n = args.n(), len = args.len(), dk = args.dk(), dv = args.dv();
  const T* qp = args.q.data<T>();
  const T* kp = args.k.data<T>();
  const T* vp = args.v.data<T>();
  const T* s0p = args.s0.defined() ? args.s0.data<T>() : nullptr;
  const T* gp = args.g.defined() ? args.g.data<T>() : nullptr;
  T* op = out.data<T>();
  T* sfp = s_final.data<T>();
  std::vector<T> s(dk * dv);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < dk * dv; ++i) s[i] = s0p ? s0p[b * dk * dv + i] : T(0);
    for (int64_t t = 0; t < len; ++t) {
      const T* qt = qp + (b * len + t) * dk;
      const T* kt = kp + (b * len + t) * dk;
      const T* vt = vp + (b * len + t) * dv;
      if (gp) {
        const T gamma = std::exp(gp[b * len + t]);
        for (int64_t i = 0; i < dk * dv; ++i) s[i] *= gamma;
      }
      for (int64_t a = 0; a < dk; ++a)
        for (int64_t c = 0; c < dv; ++c) s[a * dv + c] += kt[a] * vt[c];
      for (int64_t c = 0; c < dv; ++c) {
        T acc = 0;
        for (int64_t a = 0; a < dk; ++a) acc += s[a * dv + c] * qt[a];
        op[(b * len + t) * dv + c] = acc;
      }
    }
    for (int64_t i = 0; i < dk * dv; ++i) sfp[b * dk * dv + i] = s[i];
  }
}

template <class T>
void backward_impl(const GatedStateArgs& args, const Tensor& dout, const Tensor& dsf,
                   const GatedStateGrads& grads) {
  const int64_t n = args.n(), len = args.len(), dk = args.dk(), dv = args.dv();
  const int64_t sz = dk * dv;
  const T* qp = args.q.data<T>();
  const T* kp = args.k.data<T>();
  const T* vp = args.v.data<T>();
  const T* s0p = args.s0.defined() ? args.s0.data<T>() : nullptr;
  const T* gp = args.g.defined() ? args.g.data<T>() : nullptr;
  const T* gop = dout.data<T>();
  const T* dsfp = dsf.data<T>();
  T* dqp = grads.dq.data<T>();
  T* dkp = grads.dk.data<T>();
  T* dvp = grads.dv.data<T>();
  T* ds0p = grads.ds0.defined() ? grads.ds0.data<T>() : nullptr;
  T* dgp = gp && grads.dg.defined() ? grads.dg.data<T>() : nullptr;
  std::vector<T> states(len * sz), u(sz), init(sz);
  for (int64_t b = 0; b < n; ++b) {
    const int64_t row = b * len;
    auto gamma = [&](int64_t t) { return gp && t < len ? std::exp(gp[row + t]) : T(1); };
    for (int64_t i = 0; i < sz; ++i) init[i] = s0p ? s0p[b * sz + i] : T(0);
    // Every S_t, from the definition.
    for (int64_t t = 0; t < len; ++t) {
      T* st = states.data() + t * sz;
      const T* prev = t > 0 ? st - sz : init.data();
      const T* kt = kp + (row + t) * dk;
      const T* vt = vp + (row + t) * dv;
      const T gt = gamma(t);
      for (int64_t a = 0; a < dk; ++a)
        for (int64_t c = 0; c < dv; ++c) st[a * dv + c] = gt * prev[a * dv + c] + kt[a] * vt[c];
    }
    // dq_t = S_t G_t.
    for (int64_t t = 0; t < len; ++t) {
      const T* st = states.data() + t * sz;
      const T* got = gop + (row + t) * dv;
      for (int64_t a = 0; a < dk; ++a) {
        T acc = 0;
        for (int64_t c = 0; c < dv; ++c) acc += st[a * dv + c] * got[c];
        dqp[(row + t) * dk + a] = acc;
      }
    }
    // U_t from the last token back.
    for (int64_t i = 0; i < sz; ++i) u[i] = dsfp[b * sz + i];
    for (int64_t t = len - 1; t >= 0; --t) {
      const T* qt = qp + (row + t) * dk;
      const T* kt = kp + (row + t) * dk;
      const T* vt = vp + (row + t) * dv;
      const T* got = gop + (row + t) * dv;
      const T next = gamma(t + 1);  // 1 at the last token: s_final is S_{T-1} itself
      for (int64_t a = 0; a < dk; ++a)
        for (int64_t c = 0; c < dv; ++c) u[a * dv + c] = next * u[a * dv + c] + qt[a] * got[c];
      for (int64_t a = 0; a < dk; ++a) {
        T acc = 0;
        for (int64_t c = 0; c < dv; ++c) acc += u[a * dv + c] * vt[c];
        dkp[(row + t) * dk + a] = acc;
      }
      for (int64_t c = 0; c < dv; ++c) {
        T acc = 0;
        for (int64_t a = 0; a < dk; ++a) acc += u[a * dv + c] * kt[a];
        dvp[(row + t) * dv + c] = acc;
      }
      if (dgp) {
        const T* prev = t > 0 ? states.data() + (t - 1) * sz : init.data();
        T acc = 0;
        for (int64_t i = 0; i < sz; ++i) acc += u[i] * prev[i];
        dgp[row + t] = gamma(t) * acc;
      }
    }
    if (ds0p)
      for (int64_t i = 0; i < sz; ++i) ds0p[b * sz + i] = gamma(0) * u[i];
  }
}

template <class T>
void step_impl(const GatedStateArgs& args, const Tensor& s, const Tensor& out) {
  const int64_t dk = s.size(2), dv = s.size(3), n = s.size(0) * s.size(1);
  const T* qp = args.q.data<T>();
  const T* kp = args.k.data<T>();
  const T* vp = args.v.data<T>();
  const T* gp = args.g.defined() ? args.g.data<T>() : nullptr;
  T* sp = s.data<T>();
  T* op = out.data<T>();
  for (int64_t b = 0; b < n; ++b) {
    const T gamma = gp ? std::exp(gp[b]) : T(1);
    for (int64_t c = 0; c < dv; ++c) {
      T acc = 0;
      for (int64_t a = 0; a < dk; ++a) {
        T& sac = sp[(b * dk + a) * dv + c];
        sac = gamma * sac + kp[b * dk + a] * vp[b * dv + c];
        acc += sac * qp[b * dk + a];
      }
      op[b * dv + c] = acc;
    }
  }
}

}  // namespace

void linear_attention_forward(const GatedStateArgs& a, const Tensor& out, const Tensor& s_final) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T, forward_impl<T>(a, out, s_final));
}

void linear_attention_backward(const GatedStateArgs& a, const Tensor& dout, const Tensor& ds_final,
                               const GatedStateGrads& grads) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      backward_impl<T>(a, dout, ds_final, grads));
}

void linear_attention_step(const GatedStateArgs& a, const Tensor& s, const Tensor& out) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention_step", T, step_impl<T>(a, s, out));
}

}  // namespace rill::ref
