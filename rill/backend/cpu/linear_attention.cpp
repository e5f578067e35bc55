// Fast gated-state op: causal linear attention with an optional scalar decay gamma_t = exp(g_t),
// g_t <= 0. Shapes: N = B*H sequences, T tokens, Dk key size, Dv value size.
//
//   S_t = gamma_t S_{t-1} + k_t v_t^T,   out_t = S_t^T q_t,   S_{-1} = s0,   s_final = S_{T-1}.
//
// Backward. With G = dL/d out and U_t = dL/dS_t (S_t feeds out_t, S_{t+1} and, last, s_final):
//   U_t = gamma_{t+1} U_{t+1} + q_t G_t^T   (gamma_T = 1, U_T = dS_final),
//   dq_t = S_t G_t,   dk_t = U_t v_t,   dv_t = U_t^T k_t,   ds0 = gamma_0 U_0.
//
// The decay's gradient. With B_i = g_0 + ... + g_i the recurrence unrolls to
//   out_i = sum_{j<=i} e^{B_i-B_j} (q_i.k_j) v_j + e^{B_i} s0^T q_i,
//   s_final = sum_j e^{B_{T-1}-B_j} k_j v_j^T + e^{B_{T-1}} s0,
// so L is a sum of "pair" terms X_ij e^{B_i - B_j}, i >= j (j = -1 for s0, B_{-1} = 0; s_final
// acts as one more output at i = T-1). Taking the B_i as free variables, B_i enters with + the
// pairs where it is the later end (they make up q_i.dq_i, and <dS_final, S_final> at T-1) and
// with - those where it is the earlier end (they make up k_i.dk_i):
//   dL/dB_i = q_i.dq_i - k_i.dk_i (+ <dS_final, S_final> at i = T-1),
// and g_t enters every B_i with i >= t, so dg_t = sum_{i>=t} dL/dB_i, a reverse cumulative sum.
// In that sum a pair with both ends >= t comes once with + and once with -, so exactly the pairs
// straddling t (i >= t > j) remain: dg_t = gamma_t <U_t, S_{t-1}>, which the ref oracle computes.
// Numerically the cancellation matters: a diagonal pair (i = j, factor e^0) is O(1) in both
// q_i.dq_i and k_i.dk_i, while dg_t may be e^-20 small (strong decay), so the difference of the
// inclusive products is rounding noise larger than the answer. The kernels never form those
// pairs: the recurrent form reads dq and dk out before the token's own write, the chunked form
// sums the straddling pairs directly (see each form below).
//
// Recurrent form. One fused scan does everything: with a state S [Ds,Dw] it computes
//   S_t = d_t S_prev + key_t val_t^T,   out_t = S_t^T qry_t   (inclusive readout), or
//   out_t = (d_t S_prev)^T qry_t                              (exclusive: before the write),
// tokens in forward or reverse order (d_t = 1 without decay). The forward is one scan (key=k,
// val=v, qry=q). The backward (the paper's Algorithm 1, no per-token state kept) is three:
//   dq_t = S_t G_t          forward scan of S^T: key=v, val=k, qry=G, init s0^T
//   dv_t = U_t^T k_t        reverse scan of U:   key=q, val=G, qry=k, init dS_final
//   dk_t = U_t v_t          reverse scan of U^T: key=G, val=q, qry=v, init dS_final^T
// (the reverse scans decay by gamma_{t+1}; ds0 = gamma_0 U_0 is the dv scan's final state).
// Sweeping U twice, once in each layout, costs 12 instead of 10 Dk*Dv FMAs per token but reads
// every output out along the state's rows, vectorised over Dw with no horizontal sums, and the
// three scans run in parallel. With dg wanted, the dq and dk scans are exclusive: dq'_t = gamma_t
// S_{t-1} G_t, dk'_t = gamma_{t+1} U_{t+1} v_t, then
//   dB_t = q_t.dq'_t - k_t.dk'_t (t < T-1),   dB_{T-1} = q.dq' + gamma_{T-1} <dS_final, S_{T-2}>,
//   dg_t = sum_{i>=t} dB_i,   dq_t = dq'_t + (v_t.G_t) k_t,   dk_t = dk'_t + (G_t.v_t) q_t,
// where the dq scan stops before the last token so that its final state is S_{T-2}.
// The state's columns evolve independently, so a unit of work is one (sequence, scan, group of
// columns), its state slab kept contiguous in per-thread scratch. Within a unit, 3 tokens share
// each load and store of a state row: 6 FMAs per state vector loaded and stored (decayed: 6 FMAs
// and 3 multiplies). dg's reverse sum over T accumulates in f64.
//
// Chunked form. Per chunk of L tokens with start state S_c, chunk-local cumulative log-decay
// b_i = g_0 + .. + g_i, Gamma_ij = exp(b_i - b_j) for j <= i (0 above), w_j = exp(b_{L-1} - b_j)
// and a_c = exp(b_{L-1}):
//   O = diag(e^b) Q S_c + ((Q K^T) ⊙ Gamma) V,   S_{c+1} = a_c S_c + (diag(w) K)^T V,
// in three phases: every chunk's (diag(w) K)^T V in parallel, a decayed prefix sum over chunks
// (per state row, sequential in c), then every chunk's output in parallel. So chunks run in
// parallel even when B*H is 1. Without decay every factor is 1 and is skipped.
// Stability: every exponent taken is a sum of log-decays, <= 0, so every factor is in [0, 1]; a
// strong decay underflows to 0, never to inf or NaN. exp(-b_j) alone is never formed (the
// factorisation (e^b ⊙ Q)(e^-b ⊙ K)^T overflows once the cumulative decay underflows). And
// b_i - b_j is accumulated as the partial sum g_{j+1} + .. + g_i rather than subtracted from two
// prefix sums, so its rounding error is relative to itself, not to |b_i| (an f32 chunk of 1000
// tokens at g ~ -0.75 would otherwise lose 4e-5 relative in its near-diagonal factors).
// The backward recomputes the chunk-start states the same way, forms D_c = dL/dS_{c+1} by the
// same decayed prefix sum run backwards,
//   D_{c-1} = a_c D_c + (diag(e^b) Q_c)^T G_c,   D_last = dS_final,   ds0 = D_{-1},
// then per chunk, with A = (Q K^T) ⊙ Gamma and dA = (G V^T) ⊙ Gamma:
//   dQ = diag(e^b) G S_c^T + dA K,   dK = dA^T Q + diag(w) V D_c^T,   dV = A^T G + diag(w) K D_c,
//   dg_t = sum_{i>=t>j} A_ij (G V^T)_ij            (straddling pairs inside the chunk)
//        + sum_{i>=t} q_i.(e^{b_i} S_c G_i)        (later in the chunk, earlier chunks and s0)
//        + sum_{j<t} k_j.(w_j D_c v_j)             (later chunks and s_final, earlier in chunk)
//        + a_c <D_c, S_c>                          (later chunks with earlier chunks),
// every term a sum over straddling pairs, so there is no cancellation. It stores 2 * T/C states,
// no per-token state.
#include "rill/backend/cpu/linear_attention.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "rill/backend/cpu/gated_state_util.h"
#include "rill/backend/cpu/gemm.h"
#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/simd_vectors.h"
#include "rill/backend/cpu/vector_decay.h"

namespace rill::cpu {

namespace {

using namespace gated_state;
using namespace simd;

// gamma [N, T+1]: gamma[b, t] = exp(g[b, t]) and gamma[b, T] = 1, so that a reverse scan, which
// decays by gamma_{t+1} at token t, reads gamma + 1 and finds 1 at the last token.
template <class T>
Tensor decay_factors(const Tensor& g) {
  const int64_t n = g.size(0), len = g.size(1);
  Tensor out = Tensor::empty({n, len + 1}, dtype_of<T>);
  const T* gp = g.data<T>();
  T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (n * len > kParallelMinWork / 8)
  for (int64_t b = 0; b < n; ++b) {
    exp_array(gp + b * len, op + b * (len + 1), len);
    op[b * (len + 1) + len] = T(1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Recurrent form: the fused scan.

// How a scan treats its decay: none (today's undecayed scan, unchanged), inclusive (decay, write,
// then read out) or exclusive (decay, read out, then write: the backward's dq', dk').
enum class Gate { none, inclusive, exclusive };

template <class T>
struct ScanArgs {
  int64_t len = 0, ds = 0, dw = 0;  // tokens, state rows, state columns
  const T* key = nullptr;           // [len, ds], row stride ldk
  const T* val = nullptr;           // [len, dw]
  const T* qry = nullptr;           // [len, ds]
  T* out = nullptr;                 // [len, dw]
  int64_t ldk = 0, ldv = 0, ldq = 0, ldo = 0;
  Gate gate = Gate::none;
  const T* decay = nullptr;  // [len]: token t's decay factor (gate != none)
  const T* init = nullptr;   // state element (a, c) at init[a * init_rs + c * init_cs]; null = 0
  int64_t init_rs = 0, init_cs = 0;
  T* fin = nullptr;  // final state, same addressing, times fin_scale; null = not wanted
  int64_t fin_rs = 0, fin_cs = 0;
  T fin_scale = 1;
  bool reverse = false;
};

// NT tokens (indices tok[]) through the state slab S [ds, NB*lanes] of columns [c, c + width).
// Per state element and token, always in this order (so a column's result does not depend on
// which group or lane it lands in): none: s += key*val, out += qry*s; inclusive: s = d*s +
// key*val, out += qry*s; exclusive: s = d*s, out += qry*s, s += key*val.
template <Gate G, class T, class V, int NB, int NT>
[[gnu::always_inline]] inline void scan_tokens(const ScanArgs<T>& p, const int64_t* tok, int64_t c,
                                               int width, T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  constexpr int64_t lds = NB * kLanes;
  V vv[NT][NB], o[NT][NB];
  const T* kr[NT];
  const T* qr[NT];
  T d[NT];
  for (int t = 0; t < NT; ++t) {
    kr[t] = p.key + tok[t] * p.ldk;
    qr[t] = p.qry + tok[t] * p.ldq;
    d[t] = G == Gate::none ? T(1) : p.decay[tok[t]];
    for (int j = 0; j < NB; ++j) {
      vv[t][j] = load_part<V>(p.val + tok[t] * p.ldv + c + j * kLanes, width - j * kLanes);
      o[t][j] = V{};
    }
  }
  for (int64_t a = 0; a < p.ds; ++a) {
    V s[NB];
    for (int j = 0; j < NB; ++j) s[j] = load<V>(S + a * lds + j * kLanes);
    for (int t = 0; t < NT; ++t) {
      const T kk = kr[t][a], qq = qr[t][a];
      for (int j = 0; j < NB; ++j) {
        if constexpr (G == Gate::none) {
          s[j] += kk * vv[t][j];
          o[t][j] += qq * s[j];
        } else if constexpr (G == Gate::inclusive) {
          s[j] = d[t] * s[j] + kk * vv[t][j];
          o[t][j] += qq * s[j];
        } else {
          s[j] *= d[t];
          o[t][j] += qq * s[j];
          s[j] += kk * vv[t][j];
        }
      }
    }
    for (int j = 0; j < NB; ++j) store(S + a * lds + j * kLanes, s[j]);
  }
  for (int t = 0; t < NT; ++t)
    for (int j = 0; j < NB; ++j)
      store_part(p.out + tok[t] * p.ldo + c + j * kLanes, o[t][j], width - j * kLanes);
}

// Tokens this far ahead are prefetched: once T*(2 Dk + 2 Dv) values outgrow the caches the rows
// stream from memory, and this gained 5-10% there (T = 65536) and nothing in cache.
constexpr int64_t kPrefetch = 32;

template <class T>
[[gnu::always_inline]] inline void prefetch_row(const T* p, int64_t n) {
  for (int64_t x = 0; x < n; x += 64 / static_cast<int64_t>(sizeof(T))) __builtin_prefetch(p + x);
}
template <class T>
[[gnu::always_inline]] inline void prefetch_token(const ScanArgs<T>& p, int64_t t, int64_t c,
                                                  int width) {
  prefetch_row(p.key + t * p.ldk, p.ds);
  prefetch_row(p.qry + t * p.ldq, p.ds);
  prefetch_row(p.val + t * p.ldv + c, width);
}

// Tokens per pass over the state: 3 tokens x 4 vectors keep 12 accumulators, 12 values and 4
// state vectors in the 32 AVX-512 registers (4 tokens spilled).
constexpr int kBlock = 3;

// The whole scan for columns [c, c + width), width <= NB * lanes, with slab scratch S.
template <Gate G, class T, class V, int NB>
[[gnu::always_inline]] inline void scan_group(const ScanArgs<T>& p, int64_t c, int width, T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  constexpr int64_t lds = NB * kLanes;
  for (int64_t a = 0; a < p.ds; ++a)
    for (int64_t x = 0; x < lds; ++x)
      S[a * lds + x] = (x < width && p.init) ? p.init[a * p.init_rs + (c + x) * p.init_cs] : T(0);
  int64_t tok[kBlock];
  int64_t i = 0;
  auto index = [&](int64_t j) { return p.reverse ? p.len - 1 - j : j; };
  for (; i + kBlock <= p.len; i += kBlock) {
    for (int t = 0; t < kBlock; ++t) tok[t] = index(i + t);
    if (i + kPrefetch + kBlock <= p.len)
      for (int t = 0; t < kBlock; ++t) prefetch_token(p, index(i + kPrefetch + t), c, width);
    scan_tokens<G, T, V, NB, kBlock>(p, tok, c, width, S);
  }
  const int rest = static_cast<int>(p.len - i);
  for (int t = 0; t < rest; ++t) tok[t] = index(i + t);
  static_assert(kBlock == 3, "the tail below handles up to 2 tokens");
  switch (rest) {
    case 2:
      scan_tokens<G, T, V, NB, 2>(p, tok, c, width, S);
      break;
    case 1:
      scan_tokens<G, T, V, NB, 1>(p, tok, c, width, S);
      break;
    default:
      break;
  }
  if (p.fin)
    for (int64_t a = 0; a < p.ds; ++a)
      for (int x = 0; x < width; ++x)
        p.fin[a * p.fin_rs + (c + x) * p.fin_cs] = S[a * lds + x] * p.fin_scale;
}

// A group is at most 4 vectors wide with AVX-512 (64 f32 columns: a head of 64 reads its q and k
// rows once; T = 65536 ran at 150 GFLOP/s a core against 96 with two 32-column groups) and 2 with
// AVX2's 16 registers. Narrower groups use as many vectors as they fill.
constexpr int kMaxVectorsAvx512 = 4, kMaxVectorsAvx2 = 2;

template <Gate G, class T, class V, int MaxNB>
[[gnu::always_inline]] inline void scan_any_width(const ScanArgs<T>& p, int64_t c, int width,
                                                  T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  switch ((width + kLanes - 1) / kLanes) {
    case 1:
      scan_group<G, T, V, 1>(p, c, width, S);
      break;
    case 2:
      scan_group<G, T, V, 2>(p, c, width, S);
      break;
    case 3:
      if constexpr (MaxNB >= 3) scan_group<G, T, V, 3>(p, c, width, S);
      break;
    case 4:
      if constexpr (MaxNB >= 4) scan_group<G, T, V, 4>(p, c, width, S);
      break;
    default:
      break;
  }
}

template <class T, class V, int MaxNB>
[[gnu::always_inline]] inline void scan_any_group(const ScanArgs<T>& p, int64_t c, int width,
                                                  T* S) {
  switch (p.gate) {
    case Gate::none:
      scan_any_width<Gate::none, T, V, MaxNB>(p, c, width, S);
      break;
    case Gate::inclusive:
      scan_any_width<Gate::inclusive, T, V, MaxNB>(p, c, width, S);
      break;
    case Gate::exclusive:
      scan_any_width<Gate::exclusive, T, V, MaxNB>(p, c, width, S);
      break;
  }
}

// One group on the baseline ISA (AVX2: 32-byte vectors) or with AVX-512 (64-byte vectors).
template <class T>
void scan_group_avx2(const ScanArgs<T>& p, int64_t c, int width, T* S) {
  scan_any_group<T, Vec32<T>, kMaxVectorsAvx2>(p, c, width, S);
}
template <class T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) void scan_group_avx512(
    const ScanArgs<T>& p, int64_t c, int width, T* S) {
  scan_any_group<T, Vec64<T>, kMaxVectorsAvx512>(p, c, width, S);
}

// The cpu backend's SIMD level (cpu/isa.h), so RILL_ISA=avx2 reaches this kernel too.
bool has_avx512() { return simd_level() >= SimdLevel::avx512; }

template <class T>
int64_t vector_lanes() {
  return (has_avx512() ? 64 : 32) / static_cast<int64_t>(sizeof(T));
}

// Runs every scan, each split into groups of columns, all (scan, group) units in parallel.
// Every column of a state is computed lane-wise by the same FMAs in the same order whatever group
// it falls in, so the grouping may follow the thread count without changing a bit: groups are
// halved while there are fewer units than threads (one head of Dv = 64 then still uses 2 cores).
template <class T>
void run_scans(const std::vector<ScanArgs<T>>& scans) {
  const int64_t lanes = vector_lanes<T>();
  const int threads = omp_get_max_threads();
  int64_t gw = lanes * (has_avx512() ? kMaxVectorsAvx512 : kMaxVectorsAvx2);
  auto count_units = [&](int64_t g) {
    int64_t n = 0;
    for (const ScanArgs<T>& p : scans) n += (p.dw + g - 1) / g;
    return n;
  };
  while (gw > lanes && count_units(gw) < threads) gw /= 2;
  struct Unit {
    int64_t scan, col;
  };
  std::vector<Unit> units;
  int64_t work = 0, max_ds = 0;
  for (size_t s = 0; s < scans.size(); ++s) {
    for (int64_t c = 0; c < scans[s].dw; c += gw) units.push_back({static_cast<int64_t>(s), c});
    work += scans[s].len * scans[s].ds * scans[s].dw;
    max_ds = std::max(max_ds, scans[s].ds);
  }
  const int64_t nu = static_cast<int64_t>(units.size());
  if (nu == 0) return;
  // One slab per thread, reused across its units (rill's allocator caches the block).
  Tensor scratch = Tensor::empty({threads, std::max<int64_t>(1, max_ds * gw)}, dtype_of<T>);
  T* scratch_p = scratch.data<T>();
  const int64_t slab = scratch.size(1);
  const bool wide = has_avx512();
#pragma omp parallel for schedule(dynamic, 1) if (nu > 1 && work > kParallelMinWork)
  for (int64_t u = 0; u < nu; ++u) {
    const ScanArgs<T>& p = scans[units[u].scan];
    const int64_t c = units[u].col;
    const int width = static_cast<int>(std::min(gw, p.dw - c));
    T* S = scratch_p + omp_get_thread_num() * slab;
    if (wide)
      scan_group_avx512<T>(p, c, width, S);
    else
      scan_group_avx2<T>(p, c, width, S);
  }
}

template <class T>
void recurrent_forward_impl(const GatedStateArgs& a, const Tensor& out, const Tensor& sf) {
  const int64_t n = a.n(), len = a.len(), dk = a.dk(), dv = a.dv();
  const Tensor gamma_t = a.scalar_decay() ? decay_factors<T>(a.g) : Tensor();
  const T* gamma = gamma_t.defined() ? gamma_t.data<T>() : nullptr;
  std::vector<ScanArgs<T>> scans(n);
  for (int64_t b = 0; b < n; ++b) {
    ScanArgs<T>& p = scans[b];
    p.len = len, p.ds = dk, p.dw = dv;
    p.key = a.k.data<T>() + b * len * dk, p.ldk = dk;
    p.val = a.v.data<T>() + b * len * dv, p.ldv = dv;
    p.qry = a.q.data<T>() + b * len * dk, p.ldq = dk;
    p.out = out.data<T>() + b * len * dv, p.ldo = dv;
    if (gamma) p.gate = Gate::inclusive, p.decay = gamma + b * (len + 1);
    if (a.s0.defined()) p.init = a.s0.data<T>() + b * dk * dv, p.init_rs = dv, p.init_cs = 1;
    p.fin = sf.data<T>() + b * dk * dv, p.fin_rs = dv, p.fin_cs = 1;
  }
  run_scans(scans);
}

// Tokens per unit of the recurrent backward's epilogue (a fixed split: results do not depend on
// the thread count).
constexpr int64_t kEpilogueTokens = 256;

// The decayed recurrent backward after its exclusive dq and dk scans (see the file comment):
// finishes the last token's dq' from S_{T-2} (in slast, [N,Dk,Dv]), forms dB_t in dg, adds the
// diagonal pairs back into dq and dk, then takes dg's reverse cumulative sum.
template <class T>
void recurrent_decay_epilogue(const GatedStateArgs& a, const T* gamma, const T* slast,
                              const T* dout, const T* dsf, T* dq, T* dk, T* dg) {
  const int64_t n = a.n(), len = a.len(), dk_ = a.dk(), dv = a.dv(), sz = dk_ * dv;
  const T* q = a.q.data<T>();
  const T* k = a.k.data<T>();
  const T* v = a.v.data<T>();
  const int64_t blocks = (len + kEpilogueTokens - 1) / kEpilogueTokens, units = n * blocks;
  std::vector<T> last_term(n, T(0));  // gamma_{T-1} <dS_final, S_{T-2}> per sequence
  const bool parallel = n * len * (dk_ + dv) > kParallelMinWork / 8;
#pragma omp parallel if (parallel)
  {
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n; ++b) {
      if (len == 0) continue;
      const int64_t t = len - 1;
      const T gl = gamma[b * (len + 1) + t];
      const T* s = slast + b * sz;
      const T* gt = dout + (b * len + t) * dv;
      for (int64_t r = 0; r < dk_; ++r) dq[(b * len + t) * dk_ + r] = gl * dot(s + r * dv, gt, dv);
      last_term[b] = gl * dot(dsf + b * sz, s, sz);
    }
#pragma omp for schedule(static)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / blocks, t0 = (u % blocks) * kEpilogueTokens;
      const int64_t t1 = std::min(len, t0 + kEpilogueTokens);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t row = b * len + t;
        const T* qt = q + row * dk_;
        const T* kt = k + row * dk_;
        T* dqt = dq + row * dk_;
        T* dkt = dk + row * dk_;
        const T vg = dot(v + row * dv, dout + row * dv, dv);
        const T plus = dot(qt, dqt, dk_);
        const T minus = t + 1 < len ? dot(kt, dkt, dk_) : T(0);
#pragma omp simd
        for (int64_t r = 0; r < dk_; ++r) {
          dqt[r] += vg * kt[r];
          dkt[r] += vg * qt[r];
        }
        dg[row] = plus - minus;
      }
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n; ++b) {
      double run = len > 0 ? double(last_term[b]) : 0.0;  // f64: T terms of either sign
      for (int64_t t = len - 1; t >= 0; --t) {
        run += dg[b * len + t];
        dg[b * len + t] = static_cast<T>(run);
      }
    }
  }
}

template <class T>
void recurrent_backward_impl(const GatedStateArgs& a, const Tensor& dout_t, const Tensor& dsf_t,
                             const GatedStateGrads& gr) {
  const int64_t n = a.n(), len = a.len(), dk = a.dk(), dv = a.dv();
  const Tensor gamma_t = a.scalar_decay() ? decay_factors<T>(a.g) : Tensor();
  const T* gamma = gamma_t.defined() ? gamma_t.data<T>() : nullptr;
  // dg wanted: the dq and dk scans read out before each token's write (see the file comment).
  const bool want_dg = gamma && gr.dg.defined();
  const Gate own = !gamma ? Gate::none : (want_dg ? Gate::exclusive : Gate::inclusive);
  const Gate plain = !gamma ? Gate::none : Gate::inclusive;
  Tensor slast_t = want_dg ? Tensor::empty({n, dk, dv}, dtype_of<T>) : Tensor();
  const T* dout = dout_t.data<T>();
  const T* dsf = dsf_t.data<T>();
  std::vector<ScanArgs<T>> scans;
  for (int64_t b = 0; b < n; ++b) {
    const T* qb = a.q.data<T>() + b * len * dk;
    const T* kb = a.k.data<T>() + b * len * dk;
    const T* vb = a.v.data<T>() + b * len * dv;
    const T* gb = dout + b * len * dv;
    const T* dsfb = dsf + b * dk * dv;
    const T* gam = gamma ? gamma + b * (len + 1) : nullptr;
    ScanArgs<T> p;
    p.len = len;
    // dq_t = S_t g_t: the state transposed, S^T [Dv,Dk] += v_t k_t^T, read out with g_t. With dg
    // wanted it stops before the last token, leaving S_{T-2} for the epilogue.
    p.ds = dv, p.dw = dk;
    p.key = vb, p.ldk = dv, p.val = kb, p.ldv = dk, p.qry = gb, p.ldq = dv;
    p.out = gr.dq.data<T>() + b * len * dk, p.ldo = dk;
    p.gate = own, p.decay = gam;
    if (a.s0.defined()) p.init = a.s0.data<T>() + b * dk * dv, p.init_rs = 1, p.init_cs = dv;
    if (want_dg) {
      p.len = std::max<int64_t>(0, len - 1);
      p.fin = slast_t.data<T>() + b * dk * dv, p.fin_rs = 1, p.fin_cs = dv;
    }
    scans.push_back(p);
    // dv_t = U_t^T k_t: U [Dk,Dv] += q_t g_t^T from the last token back; ds0 = gamma_0 U_0.
    p = ScanArgs<T>{};
    p.len = len, p.reverse = true;
    p.ds = dk, p.dw = dv;
    p.key = qb, p.ldk = dk, p.val = gb, p.ldv = dv, p.qry = kb, p.ldq = dk;
    p.out = gr.dv.data<T>() + b * len * dv, p.ldo = dv;
    p.gate = plain, p.decay = gam ? gam + 1 : nullptr;
    p.init = dsfb, p.init_rs = dv, p.init_cs = 1;
    if (gr.ds0.defined()) {
      p.fin = gr.ds0.data<T>() + b * dk * dv, p.fin_rs = dv, p.fin_cs = 1;
      if (gam) p.fin_scale = gam[0];
    }
    scans.push_back(p);
    // dk_t = U_t v_t: U^T [Dv,Dk] += g_t q_t^T from the last token back.
    p = ScanArgs<T>{};
    p.len = len, p.reverse = true;
    p.ds = dv, p.dw = dk;
    p.key = gb, p.ldk = dv, p.val = qb, p.ldv = dk, p.qry = vb, p.ldq = dv;
    p.out = gr.dk.data<T>() + b * len * dk, p.ldo = dk;
    p.gate = own, p.decay = gam ? gam + 1 : nullptr;
    p.init = dsfb, p.init_rs = 1, p.init_cs = dv;
    scans.push_back(p);
  }
  run_scans(scans);
  if (want_dg)
    recurrent_decay_epilogue(a, gamma, slast_t.data<T>(), dout, dsf, gr.dq.data<T>(),
                             gr.dk.data<T>(), gr.dg.data<T>());
}

// ---------------------------------------------------------------------------------------------
// Chunked form.
//
// How the chunk products are run, measured with a driver over these kernels (B=1 H=4
// Dk=Dv=64, C=64, f32, 2 threads, forward+backward, best of 5 on a shared, loaded machine;
// ms at T = 1024 / 4096 / 16384):
//   each chunk-level product a single-threaded cpu::gemm (oneDNN) inside one parallel loop
//   over (sequence, chunk) units:                                       2.1 /  26 / 164
//   the same products as 2-thread cpu::gemm calls from a serial loop:    15 / 104 / 348
// A 64x64x64 product is ~3 us of work, too little to split over threads, so the first is used.
// oneDNN runs these shapes single-threaded at ~120-160 GFLOP/s (NN, TN; NT ~80). Hand-written
// loops were not tried here: the recurrent scan is the hand-written kernel, and on this CPU it
// is the faster form (it executes about half the chunked form's FLOPs at Dk = Dv = C = 64).
// Small calls run their region on one thread; every region first sets its own threads' nested
// team size to 1, so a gemm inside an inactive (1-thread) region cannot go multi-threaded and
// change its rounding with the thread count.

// The decays of one chunk of m tokens with log-decays g[0, m), as partial sums of g (never
// differences of prefix sums): eb_i = exp(g_0 + .. + g_i), from the chunk start through token i;
// w_j = exp(g_{j+1} + .. + g_{m-1}), from after token j to the chunk end (w_{m-1} = 1). part
// [m] is scratch. Returns a = exp(g_0 + .. + g_{m-1}), the whole chunk's decay.
template <class T>
T chunk_decays(const T* g, int64_t m, T* eb, T* w, T* part) {
  T acc = 0;
  for (int64_t i = 0; i < m; ++i) part[i] = acc += g[i];
  exp_array(part, eb, m);
  acc = 0;
  for (int64_t j = m - 1; j >= 0; --j) {
    part[j] = acc;
    acc += g[j];
  }
  exp_array(part, w, m);
  return eb[m - 1];
}

// mask [m, m] (row stride ld) <- Gamma: exp(g_{j+1} + .. + g_i) for j <= i, 0 above. Row i's
// exponents are row i-1's plus g_i (part [m] carries them), so each is a partial sum of g.
template <class T>
void decay_mask(const T* g, int64_t m, T* mask, int64_t ld, T* part) {
  for (int64_t i = 0; i < m; ++i) {
    const T gi = g[i];
#pragma omp simd
    for (int64_t j = 0; j < i; ++j) part[j] += gi;
    part[i] = 0;
    T* row = mask + i * ld;
    exp_array(part, row, i + 1);
    std::fill(row + i + 1, row + m, T(0));
  }
}

// a <- a ⊙ mask on and below the diagonal, 0 above (set, not multiplied, so that a NaN from a
// later token cannot reach an earlier one).
template <class T>
void apply_mask(T* a, const T* mask, int64_t m, int64_t ld) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = a + i * ld;
    const T* mr = mask + i * ld;
#pragma omp simd
    for (int64_t j = 0; j <= i; ++j) row[j] *= mr[j];
    std::fill(row + i + 1, row + m, T(0));
  }
}

// Zeroes the strictly upper triangle of a rows x rows block (row stride ld): causal masking.
template <class T>
void mask_upper(T* a, int64_t rows, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i) std::fill(a + i * ld + i + 1, a + i * ld + rows, T(0));
}

// Per-thread scratch of the chunked kernels: `squares` blocks of C x C (the products A, dA and
// the decay mask), `panels` blocks of C x max(Dk, Dv) (rescaled rows of K or Q) and 8 vectors of C.
template <class T>
struct ChunkScratch {
  Tensor buf;
  int64_t c, d, squares, panels, per;
  ChunkScratch(const Chunks<T>& ch, int threads, int64_t squares_, int64_t panels_)
      : c(ch.c), d(std::max(ch.dk, ch.dv)), squares(squares_), panels(panels_) {
    per = squares * c * c + panels * c * d + 8 * c;
    buf = Tensor::empty({threads, per}, dtype_of<T>);
  }
  T* square(int thread, int64_t i) const { return buf.data<T>() + thread * per + i * c * c; }
  T* panel(int thread) const { return square(thread, squares); }
  T* vec(int thread, int64_t i) const { return panel(thread) + panels * c * d + i * c; }
};

// Phase 1 of both passes: states[u] = (diag(w) K)^T V for every unit u = (sequence, chunk), and
// decay[u] = the chunk's decay (when g is given); then the forward prefix gives states[u] = S at
// the start of the chunk, and s_final when sf is given.
template <class T>
void chunk_states(const Chunks<T>& ch, const T* k, const T* v, const T* g, const T* s0, T* states,
                  T* decay, T* sf, const ChunkScratch<T>& scratch) {
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc;
#pragma omp parallel num_threads(ch.threads())
  {
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c, m = ch.rows(i);
      const T* kc = k + t0 * ch.dk;
      if (g) {
        const int th = omp_get_thread_num();
        T* ks = scratch.panel(th);  // diag(w) K [m, Dk]
        T* w = scratch.vec(th, 1);
        decay[u] = chunk_decays(g + t0, m, scratch.vec(th, 0), w, scratch.vec(th, 2));
        scaled_rows(kc, m, ch.dk, w, ks);
        kc = ks;
      }
      gemm(true, false, ch.dk, ch.dv, m, T(1), kc, ch.dk, v + t0 * ch.dv, ch.dv, T(0),
           states + u * sz, ch.dv);
    }
    chunk_prefix(ch, states, g ? decay : nullptr, s0, sf, false);
  }
}

template <class T>
void chunked_forward_impl(const GatedStateArgs& args, int64_t chunk, const Tensor& out_,
                          const Tensor& sf) {
  const Chunks<T> ch = chunks_of<T>(args, chunk);
  const T* q = args.q.data<T>();
  const T* k = args.k.data<T>();
  const T* v = args.v.data<T>();
  const T* g = args.scalar_decay() ? args.g.data<T>() : nullptr;
  T* out = out_.data<T>();
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc;
  Tensor states_t = Tensor::empty({std::max<int64_t>(1, units * (sz + 1))}, dtype_of<T>);
  T* states = states_t.data<T>();
  T* decay = states + units * sz;  // [n, nc]
  const int threads = ch.threads();
  // Per thread: the C x C product and, decayed, the mask Gamma and a panel for diag(w) K.
  const ChunkScratch<T> scratch(ch, threads, g ? 2 : 1, g ? 1 : 0);
  chunk_states(ch, k, v, g, args.s0.defined() ? args.s0.data<T>() : nullptr, states, decay,
               sf.data<T>(), scratch);
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c, m = ch.rows(i);
      const T* qc = q + t0 * ch.dk;
      const T* kc = k + t0 * ch.dk;
      const T* vc = v + t0 * ch.dv;
      T* oc = out + t0 * ch.dv;
      const int th = omp_get_thread_num();
      T* a = scratch.square(th, 0);
      gemm(false, false, m, ch.dv, ch.dk, T(1), qc, ch.dk, states + u * sz, ch.dv, T(0), oc, ch.dv);
      gemm(false, true, m, m, ch.dk, T(1), qc, ch.dk, kc, ch.dk, T(0), a, ch.c);
      if (g) {
        // O = diag(e^b) Q S_c + (A ⊙ Gamma) V.
        T* mask = scratch.square(th, 1);
        T* eb = scratch.vec(th, 0);
        T* part = scratch.vec(th, 2);
        chunk_decays(g + t0, m, eb, scratch.vec(th, 1), part);
        scale_rows(oc, m, ch.dv, ch.dv, eb);
        decay_mask(g + t0, m, mask, ch.c, part);
        apply_mask(a, mask, m, ch.c);
      } else {
        mask_upper(a, m, ch.c);
      }
      gemm(false, false, m, ch.dv, m, T(1), a, ch.c, vc, ch.dv, T(1), oc, ch.dv);
    }
  }
}

// dg over one chunk of m tokens (see the file comment): a = A (decayed, masked) and da = G V^T
// (not yet masked), r_i = q_i.(e^{b_i} S_c G_i), s_j = k_j.(w_j D_c v_j), cst = a_c <D_c, S_c>.
// col [m] is scratch.
template <class T>
void chunk_dg(const T* a, const T* da, int64_t m, int64_t ld, const T* r, const T* s, T cst, T* col,
              T* dg) {
  // Sweeping t down, col[j] = sum_{i>=t} A_ij dA_ij; the straddling pairs are col[0, t).
  std::fill(col, col + m, T(0));
  T suffix = 0;
  for (int64_t t = m - 1; t >= 0; --t) {
    const T* ar = a + t * ld;
    const T* dr = da + t * ld;
    T inside = 0;
#pragma omp simd reduction(+ : inside)
    for (int64_t j = 0; j < t; ++j) {
      col[j] += ar[j] * dr[j];
      inside += col[j];
    }
    suffix += r[t];
    dg[t] = inside + suffix + cst;
  }
  T prefix = 0;
  for (int64_t t = 0; t < m; ++t) {
    dg[t] += prefix;
    prefix += s[t];
  }
}

template <class T>
void chunked_backward_impl(const GatedStateArgs& args, const Tensor& g_, const Tensor& dsf_,
                           int64_t chunk, const GatedStateGrads& gr) {
  const Chunks<T> ch = chunks_of<T>(args, chunk);
  const T* q = args.q.data<T>();
  const T* k = args.k.data<T>();
  const T* v = args.v.data<T>();
  const T* lg = args.scalar_decay() ? args.g.data<T>() : nullptr;  // log-decays
  const T* g = g_.data<T>();                                       // dL/d out
  const T* dsf = dsf_.data<T>();
  T* dq = gr.dq.data<T>();
  T* dk = gr.dk.data<T>();
  T* dv = gr.dv.data<T>();
  T* dgp = lg && gr.dg.defined() ? gr.dg.data<T>() : nullptr;
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc;
  Tensor states_t = Tensor::empty({std::max<int64_t>(1, units * (2 * sz + 1))}, dtype_of<T>);
  T* states = states_t.data<T>();    // S_c, chunk starts
  T* dstates = states + units * sz;  // D_c = dL/dS_{c+1}, chunk ends
  T* decay = dstates + units * sz;   // [n, nc]
  const int threads = ch.threads();
  // Per thread: A, dA and (decayed) Gamma, C x C each, a C x D panel, and vectors.
  const ChunkScratch<T> scratch(ch, threads, lg ? 3 : 2, lg ? 1 : 0);
  chunk_states(ch, k, v, lg, args.s0.defined() ? args.s0.data<T>() : nullptr, states, decay,
               static_cast<T*>(nullptr), scratch);
  T* ds0p = gr.ds0.defined() ? gr.ds0.data<T>() : nullptr;
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);
    // (diag(e^b) Q_c)^T G_c per chunk, then the reverse prefix sum from dS_final.
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c, m = ch.rows(i);
      const T* qc = q + t0 * ch.dk;
      if (lg) {
        const int th = omp_get_thread_num();
        T* qs = scratch.panel(th);  // diag(e^b) Q [m, Dk]
        T* eb = scratch.vec(th, 0);
        chunk_decays(lg + t0, m, eb, scratch.vec(th, 1), scratch.vec(th, 2));
        scaled_rows(qc, m, ch.dk, eb, qs);
        qc = qs;
      }
      gemm(true, false, ch.dk, ch.dv, m, T(1), qc, ch.dk, g + t0 * ch.dv, ch.dv, T(0),
           dstates + u * sz, ch.dv);
    }
    chunk_prefix(ch, dstates, lg ? decay : nullptr, dsf, ds0p, true);
    // Every chunk's gradients from its start state and its end-state gradient.
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c, m = ch.rows(i);
      const int64_t nk = ch.dk, nv = ch.dv, ld = ch.c;
      const T* qc = q + t0 * nk;
      const T* kc = k + t0 * nk;
      const T* vc = v + t0 * nv;
      const T* gc = g + t0 * nv;
      const T* s = states + u * sz;
      const T* ds = dstates + u * sz;
      const int th = omp_get_thread_num();
      T* a = scratch.square(th, 0);   // tril(Q K^T) (⊙ Gamma)
      T* da = scratch.square(th, 1);  // tril(G V^T) (⊙ Gamma)
      T* dqc = dq + t0 * nk;
      T* dkc = dk + t0 * nk;
      T* dvc = dv + t0 * nv;
      if (!lg) {
        gemm(false, true, m, m, nk, T(1), qc, nk, kc, nk, T(0), a, ld);
        mask_upper(a, m, ld);
        gemm(false, true, m, m, nv, T(1), gc, nv, vc, nv, T(0), da, ld);
        mask_upper(da, m, ld);
        gemm(false, true, m, nk, nv, T(1), gc, nv, s, nv, T(0), dqc, nk);
        gemm(false, false, m, nk, m, T(1), da, ld, kc, nk, T(1), dqc, nk);
        gemm(true, false, m, nk, m, T(1), da, ld, qc, nk, T(0), dkc, nk);
        gemm(false, true, m, nk, nv, T(1), vc, nv, ds, nv, T(1), dkc, nk);
        gemm(true, false, m, nv, m, T(1), a, ld, gc, nv, T(0), dvc, nv);
        gemm(false, false, m, nv, nk, T(1), kc, nk, ds, nv, T(1), dvc, nv);
        continue;
      }
      T* mask = scratch.square(th, 2);  // Gamma
      T* eb = scratch.vec(th, 0);
      T* w = scratch.vec(th, 1);
      T* part = scratch.vec(th, 2);
      T* r = scratch.vec(th, 3);
      T* sj = scratch.vec(th, 4);
      T* col = scratch.vec(th, 5);
      const T ac = chunk_decays(lg + t0, m, eb, w, part);
      decay_mask(lg + t0, m, mask, ld, part);
      gemm(false, true, m, m, nk, T(1), qc, nk, kc, nk, T(0), a, ld);
      apply_mask(a, mask, m, ld);
      gemm(false, true, m, m, nv, T(1), gc, nv, vc, nv, T(0), da, ld);
      // dg needs G V^T unmasked next to A: its straddling sums come before da is masked.
      const bool want_dg = dgp != nullptr;
      // dQ = diag(e^b) G S_c^T + dA K; r_i is row i's inter-chunk part dotted with q_i.
      gemm(false, true, m, nk, nv, T(1), gc, nv, s, nv, T(0), dqc, nk);
      scale_rows(dqc, m, nk, nk, eb);
      // dK = diag(w) V D_c^T + dA^T Q; s_j likewise.
      gemm(false, true, m, nk, nv, T(1), vc, nv, ds, nv, T(0), dkc, nk);
      scale_rows(dkc, m, nk, nk, w);
      if (want_dg) {
        for (int64_t t = 0; t < m; ++t) {
          r[t] = dot(qc + t * nk, dqc + t * nk, nk);
          sj[t] = dot(kc + t * nk, dkc + t * nk, nk);
        }
        chunk_dg(a, da, m, ld, r, sj, ac * dot(ds, s, sz), col, dgp + t0);
      }
      apply_mask(da, mask, m, ld);
      gemm(false, false, m, nk, m, T(1), da, ld, kc, nk, T(1), dqc, nk);
      gemm(true, false, m, nk, m, T(1), da, ld, qc, nk, T(1), dkc, nk);
      // dV = diag(w) K D_c + A^T G.
      gemm(false, false, m, nv, nk, T(1), kc, nk, ds, nv, T(0), dvc, nv);
      scale_rows(dvc, m, nv, nv, w);
      gemm(true, false, m, nv, m, T(1), a, ld, gc, nv, T(1), dvc, nv);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Step form. Rows of S are contiguous over Dv, so both the rank-1 update and the read-out are
// vector operations along Dv; one pass over S does both (S is read and written once per token).

template <class T>
void step_impl(const GatedStateArgs& args, const Tensor& s, const Tensor& out) {
  const int64_t dk = s.size(2), dv = s.size(3), bh = s.size(0) * s.size(1);
  const T* qp = args.q.data<T>();
  const T* kp = args.k.data<T>();
  const T* vp = args.v.data<T>();
  const T* gp = args.scalar_decay() ? args.g.data<T>() : nullptr;
  T* sp = s.data<T>();
  T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (bh * dk * dv > 65536)
  for (int64_t n = 0; n < bh; ++n) {
    T* o = op + n * dv;
    const T* vr = vp + n * dv;
    for (int64_t j = 0; j < dv; ++j) o[j] = 0;
    const T gamma = gp ? exp_nonpos(gp[n]) : T(1);
    for (int64_t i = 0; i < dk; ++i) {
      T* row = sp + (n * dk + i) * dv;
      const T ki = kp[n * dk + i], qi = qp[n * dk + i];
      if (gp) {
#pragma omp simd
        for (int64_t j = 0; j < dv; ++j) {
          row[j] = gamma * row[j] + ki * vr[j];
          o[j] += row[j] * qi;
        }
      } else {
#pragma omp simd
        for (int64_t j = 0; j < dv; ++j) {
          row[j] += ki * vr[j];
          o[j] += row[j] * qi;
        }
      }
    }
  }
}

}  // namespace

void linear_attention_recurrent_forward(const GatedStateArgs& a, const Tensor& out,
                                        const Tensor& s_final) {
  if (a.vector_decay()) return vector_decay_recurrent_forward(a, out, s_final);
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      recurrent_forward_impl<T>(a, out, s_final));
}

void linear_attention_recurrent_backward(const GatedStateArgs& a, const Tensor& dout,
                                         const Tensor& ds_final, const GatedStateGrads& grads) {
  if (a.vector_decay()) return vector_decay_recurrent_backward(a, dout, ds_final, grads);
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      recurrent_backward_impl<T>(a, dout, ds_final, grads));
}

void linear_attention_chunked_forward(const GatedStateArgs& a, int64_t chunk, const Tensor& out,
                                      const Tensor& s_final) {
  if (a.vector_decay()) return vector_decay_chunked_forward(a, chunk, out, s_final);
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      chunked_forward_impl<T>(a, chunk, out, s_final));
}

void linear_attention_chunked_backward(const GatedStateArgs& a, const Tensor& dout,
                                       const Tensor& ds_final, int64_t chunk,
                                       const GatedStateGrads& grads) {
  if (a.vector_decay()) return vector_decay_chunked_backward(a, dout, ds_final, chunk, grads);
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      chunked_backward_impl<T>(a, dout, ds_final, chunk, grads));
}

void linear_attention_step(const GatedStateArgs& a, const Tensor& s, const Tensor& out) {
  if (a.vector_decay()) return vector_decay_step(a, s, out);
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention_step", T, step_impl<T>(a, s, out));
}

}  // namespace rill::cpu
