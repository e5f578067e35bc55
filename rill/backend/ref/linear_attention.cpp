// Reference gated-state op (causal linear attention with a scalar or vector decay): one sequence
// at a time, one token at a time, the state S [Dk,Dv] updated and read out in scalar loops, the
// decay of element (i, c) at token t, D_t[i,c] = exp(g_t) exp(ga_t[i]) exp(gb_t[c]) (a missing
// decay is 1), taken from libm. The backward stores S_t for every t (T*Dk*Dv values) and applies
// the chain rule to the recurrence as written, step by step:
//   S_t = D_t ⊙ S_{t-1} + k_t v_t^T,  out_t = S_t^T q_t,  s_final = S_{T-1}.
// With G = dL/d out and U_t = dL/dS_t (the total: S_t feeds out_t, S_{t+1} and, last, s_final),
//   U_{T-1} = dS_final + q_{T-1} G_{T-1}^T,   U_t = D_{t+1} ⊙ U_{t+1} + q_t G_t^T,
//   dq_t = S_t G_t,  dk_t = U_t v_t,  dv_t = U_t^T k_t,  ds0 = D_0 ⊙ U_0,
//   with P_t = U_t ⊙ D_t ⊙ S_{t-1} (d D_t / d log-decay = D_t):
//   dg_t = sum of P_t,  dga_t[i] = sum_c P_t[i,c],  dgb_t[c] = sum_i P_t[i,c].
// This direct form of the decays' gradients is deliberately not the closed form the cpu kernels
// use, so that the two check each other.
#include "rill/backend/ref/linear_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace rill::ref {

namespace {

// d [Dk,Dv] <- D_t of row `row` (= sequence * T + t) of the args' decays; all ones without any.
template <class T>
void decay_factors(const GatedStateArgs& a, int64_t row, T* d) {
  const int64_t dk = a.dk(), dv = a.dv();
  const T sg = a.g.defined() ? std::exp(a.g.data<T>()[row]) : T(1);
  const T* ga = a.ga.defined() ? a.ga.data<T>() + row * dk : nullptr;
  const T* gb = a.gb.defined() ? a.gb.data<T>() + row * dv : nullptr;
  for (int64_t i = 0; i < dk; ++i)
    for (int64_t c = 0; c < dv; ++c)
      d[i * dv + c] = sg * (ga ? std::exp(ga[i]) : T(1)) * (gb ? std::exp(gb[c]) : T(1));
}

template <class T>
void forward_impl(const GatedStateArgs& args, const Tensor& out, const Tensor& s_final) {
  const int64_t n = args.n(), len = args.len(), dk = args.dk(), dv = args.dv();
  const T* qp = args.q.data<T>();
  const T* kp = args.k.data<T>();
  const T* vp = args.v.data<T>();
  const T* s0p = args.s0.defined() ? args.s0.data<T>() : nullptr;
  T* op = out.data<T>();
  T* sfp = s_final.data<T>();
  std::vector<T> s(dk * dv), d(dk * dv);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < dk * dv; ++i) s[i] = s0p ? s0p[b * dk * dv + i] : T(0);
    for (int64_t t = 0; t < len; ++t) {
      const T* qt = qp + (b * len + t) * dk;
      const T* kt = kp + (b * len + t) * dk;
      const T* vt = vp + (b * len + t) * dv;
      decay_factors(args, b * len + t, d.data());
      for (int64_t i = 0; i < dk * dv; ++i) s[i] *= d[i];
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
  const T* gop = dout.data<T>();
  const T* dsfp = dsf.data<T>();
  T* dqp = grads.dq.data<T>();
  T* dkp = grads.dk.data<T>();
  T* dvp = grads.dv.data<T>();
  T* ds0p = grads.ds0.defined() ? grads.ds0.data<T>() : nullptr;
  T* dgp = args.g.defined() && grads.dg.defined() ? grads.dg.data<T>() : nullptr;
  T* dgap = args.ga.defined() && grads.dga.defined() ? grads.dga.data<T>() : nullptr;
  T* dgbp = args.gb.defined() && grads.dgb.defined() ? grads.dgb.data<T>() : nullptr;
  // D_t for every t, and D_T = 1 (s_final is S_{T-1} itself).
  std::vector<T> states(len * sz), decays((len + 1) * sz, T(1)), u(sz), init(sz);
  for (int64_t b = 0; b < n; ++b) {
    const int64_t row = b * len;
    for (int64_t t = 0; t < len; ++t) decay_factors(args, row + t, decays.data() + t * sz);
    auto decay = [&](int64_t t) { return decays.data() + t * sz; };
    for (int64_t i = 0; i < sz; ++i) init[i] = s0p ? s0p[b * sz + i] : T(0);
    // Every S_t, from the definition.
    for (int64_t t = 0; t < len; ++t) {
      T* st = states.data() + t * sz;
      const T* prev = t > 0 ? st - sz : init.data();
      const T* kt = kp + (row + t) * dk;
      const T* vt = vp + (row + t) * dv;
      const T* dt = decay(t);
      for (int64_t a = 0; a < dk; ++a)
        for (int64_t c = 0; c < dv; ++c)
          st[a * dv + c] = dt[a * dv + c] * prev[a * dv + c] + kt[a] * vt[c];
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
      const T* next = decay(t + 1);  // 1 at the last token: s_final is S_{T-1} itself
      for (int64_t a = 0; a < dk; ++a)
        for (int64_t c = 0; c < dv; ++c)
          u[a * dv + c] = next[a * dv + c] * u[a * dv + c] + qt[a] * got[c];
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
      if (dgp || dgap || dgbp) {
        const T* prev = t > 0 ? states.data() + (t - 1) * sz : init.data();
        const T* dt = decay(t);
        T acc = 0;
        if (dgap) std::fill(dgap + (row + t) * dk, dgap + (row + t + 1) * dk, T(0));
        if (dgbp) std::fill(dgbp + (row + t) * dv, dgbp + (row + t + 1) * dv, T(0));
        for (int64_t a = 0; a < dk; ++a)
          for (int64_t c = 0; c < dv; ++c) {
            const T p = u[a * dv + c] * dt[a * dv + c] * prev[a * dv + c];
            acc += p;
            if (dgap) dgap[(row + t) * dk + a] += p;
            if (dgbp) dgbp[(row + t) * dv + c] += p;
          }
        if (dgp) dgp[row + t] = acc;
      }
    }
    if (ds0p)
      for (int64_t i = 0; i < sz; ++i) ds0p[b * sz + i] = decay(0)[i] * u[i];
  }
}

template <class T>
void step_impl(const GatedStateArgs& args, const Tensor& s, const Tensor& out) {
  const int64_t dk = s.size(2), dv = s.size(3), n = s.size(0) * s.size(1);
  const T* qp = args.q.data<T>();
  const T* kp = args.k.data<T>();
  const T* vp = args.v.data<T>();
  T* sp = s.data<T>();
  T* op = out.data<T>();
  std::vector<T> d(dk * dv);
  for (int64_t b = 0; b < n; ++b) {
    decay_factors(args, b, d.data());  // the step's args hold one token per sequence
    for (int64_t c = 0; c < dv; ++c) {
      T acc = 0;
      for (int64_t a = 0; a < dk; ++a) {
        T& sac = sp[(b * dk + a) * dv + c];
        sac = d[a * dv + c] * sac + kp[b * dk + a] * vp[b * dv + c];
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
