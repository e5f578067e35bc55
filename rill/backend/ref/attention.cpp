// Reference attention and rotary kernels: for every (b, h, i) a plain loop over all Tk keys that
// tests each key's visibility, builds the logits, and takes the softmax, all in double. Nothing
// is tiled, skipped or parallel: this is the oracle the fused kernel is checked against.
//
// Shapes: B batch, H heads, Tq queries, Tk keys, D query/key head dim, Dv value head dim,
// NB buckets.
#include "rill/backend/ref/attention.h"

#include <cmath>
#include <limits>
#include <vector>

namespace rill::ref {

namespace {

struct Dims {
  int64_t B, H, Tq, Tk, D, Dv;
};

Dims dims_of(const Tensor& q, const Tensor& v) {
  return {q.size(0), q.size(1), q.size(2), v.size(2), q.size(3), v.size(3)};
}

bool visible(const AttentionOptions& opt, int64_t i, int64_t j) {
  const int64_t pos = i + opt.q_offset;
  if (opt.causal && j > pos) return false;
  if (opt.window > 0 && j <= pos - opt.window) return false;
  return true;
}

// The logits of query row (b, h, i) against every key, -inf where the key is hidden.
template <class T>
void logits_row(const Dims& d, const T* q, const T* k, const T* bias, const AttentionOptions& opt,
                int64_t bh, int64_t i, std::vector<double>& s) {
  const int64_t h = bh % d.H;
  const T* qi = q + (bh * d.Tq + i) * d.D;
  for (int64_t j = 0; j < d.Tk; ++j) {
    if (!visible(opt, i, j)) {
      s[j] = -std::numeric_limits<double>::infinity();
      continue;
    }
    const T* kj = k + (bh * d.Tk + j) * d.D;
    double dot = 0;
    for (int64_t c = 0; c < d.D; ++c) dot += double(qi[c]) * double(kj[c]);
    s[j] = opt.scale * dot;
    if (bias) {
      const int64_t b =
          t5_bucket(i + opt.q_offset - j, !opt.causal, opt.num_buckets, opt.max_distance);
      s[j] += double(bias[b * d.H + h]);
    }
  }
}

// Turns logits into probabilities in place; returns log of the denominator (+inf when no key is
// visible, in which case every probability is 0).
double softmax_row(std::vector<double>& s) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : s) m = std::max(m, x);
  if (m == -std::numeric_limits<double>::infinity()) {
    for (double& x : s) x = 0;
    return std::numeric_limits<double>::infinity();
  }
  double l = 0;
  for (double& x : s) l += (x = std::exp(x - m));
  for (double& x : s) x /= l;
  return m + std::log(l);
}

template <class T>
void forward_impl(const Dims& d, const T* q, const T* k, const T* v, const T* bias,
                  const AttentionOptions& opt, T* out, T* lse) {
  std::vector<double> p(d.Tk), o(d.Dv);
  for (int64_t bh = 0; bh < d.B * d.H; ++bh)
    for (int64_t i = 0; i < d.Tq; ++i) {
      logits_row(d, q, k, bias, opt, bh, i, p);
      lse[bh * d.Tq + i] = static_cast<T>(softmax_row(p));
      std::fill(o.begin(), o.end(), 0.0);
      for (int64_t j = 0; j < d.Tk; ++j)
        for (int64_t c = 0; c < d.Dv; ++c) o[c] += p[j] * double(v[(bh * d.Tk + j) * d.Dv + c]);
      for (int64_t c = 0; c < d.Dv; ++c) out[(bh * d.Tq + i) * d.Dv + c] = static_cast<T>(o[c]);
    }
}

// With p = softmax(s) and o = p v: dv_j += p_j do, ds_j = p_j (do.v_j - do.o), and ds flows to
// q, k (times scale) and to the bias bucket of (i, j).
template <class T>
void backward_impl(const Dims& d, const T* q, const T* k, const T* v, const T* bias, const T* dout,
                   const AttentionOptions& opt, T* dq, T* dk, T* dv, T* dbias) {
  std::vector<double> gq(d.B * d.H * d.Tq * d.D, 0.0), gk(d.B * d.H * d.Tk * d.D, 0.0),
      gv(d.B * d.H * d.Tk * d.Dv, 0.0), gb(dbias ? opt.num_buckets * d.H : 0, 0.0);
  std::vector<double> p(d.Tk), o(d.Dv);
  for (int64_t bh = 0; bh < d.B * d.H; ++bh)
    for (int64_t i = 0; i < d.Tq; ++i) {
      logits_row(d, q, k, bias, opt, bh, i, p);
      softmax_row(p);
      const T* doi = dout + (bh * d.Tq + i) * d.Dv;
      std::fill(o.begin(), o.end(), 0.0);
      for (int64_t j = 0; j < d.Tk; ++j)
        for (int64_t c = 0; c < d.Dv; ++c) o[c] += p[j] * double(v[(bh * d.Tk + j) * d.Dv + c]);
      double do_o = 0;
      for (int64_t c = 0; c < d.Dv; ++c) do_o += double(doi[c]) * o[c];
      for (int64_t j = 0; j < d.Tk; ++j) {
        if (p[j] == 0) continue;  // hidden (or underflowed) keys pass no gradient
        const T* vj = v + (bh * d.Tk + j) * d.Dv;
        double do_v = 0;
        for (int64_t c = 0; c < d.Dv; ++c) {
          do_v += double(doi[c]) * double(vj[c]);
          gv[(bh * d.Tk + j) * d.Dv + c] += p[j] * double(doi[c]);
        }
        const double ds = p[j] * (do_v - do_o);
        for (int64_t c = 0; c < d.D; ++c) {
          gq[(bh * d.Tq + i) * d.D + c] += opt.scale * ds * double(k[(bh * d.Tk + j) * d.D + c]);
          gk[(bh * d.Tk + j) * d.D + c] += opt.scale * ds * double(q[(bh * d.Tq + i) * d.D + c]);
        }
        if (dbias) {
          const int64_t b =
              t5_bucket(i + opt.q_offset - j, !opt.causal, opt.num_buckets, opt.max_distance);
          gb[b * d.H + bh % d.H] += ds;
        }
      }
    }
  for (size_t n = 0; n < gq.size(); ++n) dq[n] = static_cast<T>(gq[n]);
  for (size_t n = 0; n < gk.size(); ++n) dk[n] = static_cast<T>(gk[n]);
  for (size_t n = 0; n < gv.size(); ++n) dv[n] = static_cast<T>(gv[n]);
  for (size_t n = 0; n < gb.size(); ++n) dbias[n] = static_cast<T>(gb[n]);
}

template <class T>
void rotary_impl(const T* x, T* y, int64_t rows, int64_t T_len, int64_t D, int64_t offset,
                 double base, bool inverse) {
  const int64_t half = D / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const double pos = static_cast<double>(offset + r % T_len);
    const T* xr = x + r * D;
    T* yr = y + r * D;
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * std::pow(base, -2.0 * static_cast<double>(i) / D);
      const double c = std::cos(angle), s = inverse ? -std::sin(angle) : std::sin(angle);
      const double a = xr[i], b = xr[i + half];
      yr[i] = static_cast<T>(a * c - b * s);
      yr[i + half] = static_cast<T>(a * s + b * c);
    }
  }
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                       const AttentionOptions& opt, const Tensor& out, const Tensor& lse) {
  RILL_DISPATCH_FLOAT(q.dtype(), "attention", T, {
    forward_impl<T>(dims_of(q, v), q.data<T>(), k.data<T>(), v.data<T>(),
                    rel_bias.defined() ? rel_bias.data<T>() : nullptr, opt, out.data<T>(),
                    lse.data<T>());
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                        const Tensor& out, const Tensor& lse, const Tensor& dout,
                        const AttentionOptions& opt, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv, const Tensor& drel_bias) {
  RILL_DISPATCH_FLOAT(q.dtype(), "attention_backward", T, {
    backward_impl<T>(dims_of(q, v), q.data<T>(), k.data<T>(), v.data<T>(),
                     rel_bias.defined() ? rel_bias.data<T>() : nullptr, dout.data<T>(), opt,
                     dq.data<T>(), dk.data<T>(), dv.data<T>(),
                     drel_bias.defined() ? drel_bias.data<T>() : nullptr);
  });
}

void rotary(const Tensor& x, int64_t offset, double base, bool inverse, const Tensor& y) {
  RILL_DISPATCH_FLOAT(x.dtype(), "rotary", T, {
    const int64_t D = x.size(-1);
    rotary_impl<T>(x.data<T>(), y.data<T>(), D == 0 ? 0 : x.numel() / D, x.size(-2), D, offset,
                   base, inverse);
  });
}

}  // namespace rill::ref
