// Reference causal linear attention: one sequence at a time, one token at a time, the state S
// [Dk,Dv] updated and read out in scalar loops. The backward stores S_t for every t (T*Dk*Dv
// values) and applies the chain rule directly: the simplest form to trust.
#include "rill/backend/ref/linear_attention.h"

#include <vector>

namespace rill::ref {

namespace {

template <class T>
void forward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                  const Tensor& out, const Tensor& s_final) {
  const int64_t n = q.size(0), len = q.size(1), dk = q.size(2), dv = v.size(2);
  const T* qp = q.data<T>();
  const T* kp = k.data<T>();
  const T* vp = v.data<T>();
  const T* s0p = s0.defined() ? s0.data<T>() : nullptr;
  T* op = out.data<T>();
  T* sfp = s_final.data<T>();
  std::vector<T> s(dk * dv);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t i = 0; i < dk * dv; ++i) s[i] = s0p ? s0p[b * dk * dv + i] : T(0);
    for (int64_t t = 0; t < len; ++t) {
      const T* qt = qp + (b * len + t) * dk;
      const T* kt = kp + (b * len + t) * dk;
      const T* vt = vp + (b * len + t) * dv;
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
void backward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                   const Tensor& dout, const Tensor& dsf, const Tensor& dq, const Tensor& dk_,
                   const Tensor& dv_, const Tensor& ds0) {
  const int64_t n = q.size(0), len = q.size(1), dk = q.size(2), dv = v.size(2);
  const int64_t sz = dk * dv;
  const T* qp = q.data<T>();
  const T* kp = k.data<T>();
  const T* vp = v.data<T>();
  const T* s0p = s0.defined() ? s0.data<T>() : nullptr;
  const T* gp = dout.data<T>();
  const T* dsfp = dsf.data<T>();
  T* dqp = dq.data<T>();
  T* dkp = dk_.data<T>();
  T* dvp = dv_.data<T>();
  T* ds0p = ds0.defined() ? ds0.data<T>() : nullptr;
  std::vector<T> states(len * sz), u(sz);
  for (int64_t b = 0; b < n; ++b) {
    const int64_t row = b * len;
    // Every S_t, from the definition.
    for (int64_t t = 0; t < len; ++t) {
      T* st = states.data() + t * sz;
      const T* kt = kp + (row + t) * dk;
      const T* vt = vp + (row + t) * dv;
      for (int64_t a = 0; a < dk; ++a)
        for (int64_t c = 0; c < dv; ++c) {
          const T prev = t > 0 ? st[a * dv + c - sz] : (s0p ? s0p[b * sz + a * dv + c] : T(0));
          st[a * dv + c] = prev + kt[a] * vt[c];
        }
    }
    // dq_t = S_t g_t.
    for (int64_t t = 0; t < len; ++t) {
      const T* st = states.data() + t * sz;
      const T* gt = gp + (row + t) * dv;
      for (int64_t a = 0; a < dk; ++a) {
        T acc = 0;
        for (int64_t c = 0; c < dv; ++c) acc += st[a * dv + c] * gt[c];
        dqp[(row + t) * dk + a] = acc;
      }
    }
    // U_t = dS_final + sum_{j>=t} q_j g_j^T is dL/dS_t's total: S_t feeds out_j and s_final.
    for (int64_t i = 0; i < sz; ++i) u[i] = dsfp[b * sz + i];
    for (int64_t t = len - 1; t >= 0; --t) {
      const T* qt = qp + (row + t) * dk;
      const T* kt = kp + (row + t) * dk;
      const T* vt = vp + (row + t) * dv;
      const T* gt = gp + (row + t) * dv;
      for (int64_t a = 0; a < dk; ++a)
        for (int64_t c = 0; c < dv; ++c) u[a * dv + c] += qt[a] * gt[c];
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
    }
    if (ds0p)
      for (int64_t i = 0; i < sz; ++i) ds0p[b * sz + i] = u[i];
  }
}

}  // namespace

void linear_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                              const Tensor& out, const Tensor& s_final) {
  RILL_DISPATCH_FLOAT(q.dtype(), "linear_attention", T, forward_impl<T>(q, k, v, s0, out, s_final));
}

void linear_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                               const Tensor& dout, const Tensor& ds_final, const Tensor& dq,
                               const Tensor& dk, const Tensor& dv, const Tensor& ds0) {
  RILL_DISPATCH_FLOAT(q.dtype(), "linear_attention", T,
                      backward_impl<T>(q, k, v, s0, dout, ds_final, dq, dk, dv, ds0));
}

}  // namespace rill::ref
