// The gated-state op with vector decays on the cpu: a key-side a_t = exp(ga_t) [Dk] over the rows
// of S and a value-side b_t = exp(gb_t) [Dv] over its columns (either may be absent: 1),
//   S_t = (a_t b_t^T) ⊙ S_{t-1} + k_t v_t^T,   out_t = S_t^T q_t,   S_{-1} = s0.
// A reset is a log-decay of -inf (the op writes it), a factor of exactly 0.
//
// The building block is one scan of a state slab [ds, dw] over a run of tokens, each token
// decaying the slab by (row factors ⊗ column factors), adding key val^T and reading out
// qry^T S, either after the write (inclusive) or before it (exclusive); units are (scan, group
// of columns), in parallel, every column computed by the same operations in the same order
// whatever its group, so results do not depend on the thread count. The kernel is
// linear_attention.cpp's: GCC vector types, an AVX-512 clone chosen at run time (simd_level())
// and an AVX2 one, groups of up to 4 (AVX-512) or 2 (AVX2) vectors, 3 tokens a pass over each
// state row with their values, column factors and readouts in registers; per element and token
// m = r * cd, then s = m * s + k v, o += q s (inclusive) or s = m * s, o += q s, s += k v
// (exclusive): 4 vector operations, against 2 without decay. Up to 4 last columns of a slab
// (dw % 16, e.g. the normaliser's column of Dv = 64 + 1) are a unit of their own that runs each
// column as vectors over the rows (vscan_cols), not a mostly empty vector per row. With AVX-512
// and Dk <= 4 vectors the backward's two scans of each state run fused (vscan_fused_group).
//
// Recurrent backward. With G = dL/d out and U_t = dL/dS_t, the forward's exclusive readout and
// three exclusive gradient scans (none forms the diagonal pair of a token with itself):
//   out'_t = (D_t ⊙ S_{t-1})^T q_t     forward, S [Dk,Dv]            (only for gb's gradient)
//   dq'_t  = (D_t ⊙ S_{t-1}) G_t       forward, S^T [Dv,Dk]
//   dv'_t  = (D_{t+1} ⊙ U_{t+1})^T k_t reverse, U [Dk,Dv] from dS_final; its end is U_0
//   dk'_t  = (D_{t+1} ⊙ U_{t+1}) v_t   reverse, U^T [Dv,Dk]
// (fused: dq' with out' and dk' with dv', each pair as one scan of the [Dv,Dk] layout whose
// second readout, along the rows, is summed over the lanes by a fixed tree)
// then dq = dq' + (v.G) k, dk = dk' + (G.v) q, dv = dv' + (q.k) G, ds0 = D_0 ⊙ U_0. The forward
// scans stop before the last token and leave S_{T-2}; the last token's readouts are formed from
// it by hand. The decays' gradients by the pair argument of linear_attention.cpp, per component:
// every pair (i >= j) enters the loss with a factor exp(cA_i - cA_j) in each key component
// (cA the cumulative ga) and exp(cB_i - cB_j) in each value component, so
//   dcA_t[x] = q_t[x] dq'_t[x] - k_t[x] dk'_t[x]  (+ sum_c dS_final[x,c] Sd[x,c] at the last token,
//              where the k-term is the diagonal pair of s_final and is left out),
//   dcB_t[c] = G_t[c] out'_t[c] - v_t[c] dv'_t[c] (+ sum_x dS_final[x,c] Sd[x,c] at the last),
// Sd = D_{T-1} ⊙ S_{T-2}, and dga_t, dgb_t are their reverse cumulative sums (in f64).
//
// Chunked form. Chunks of C tokens run in parallel: (1) every chunk's scan from a zero state
// gives its own outputs and its own end state; (2) the decayed prefix over chunks (the chunks'
// decays are vectors: the rows by exp(sum of ga), the columns by exp(sum of gb) over the chunk)
// gives every chunk's start state S_c; (3) each token adds what it sees of S_c,
//   out_i += eB_i ⊙ (S_c^T (eA_i ⊙ q_i)),  eA_i = exp(ga_{c0} + .. + ga_i), eB_i likewise,
// as one GEMM per chunk. The backward recomputes S_c, forms D_c = dL/dS_{c+1} by the reverse
// prefix from the products (eA ⊙ Q)^T (eB ⊙ G), and runs the recurrent backward on every chunk
// with s0 = S_c and dS_final = D_c, which gives that chunk's gradients exactly (the chain rule
// through S_c and S_{c+1}), the decays' included.
// Stability: every factor is exp of a partial sum of log-decays (<= 0), so it lies in [0, 1];
// exp(-sum) is never formed (the factorisation that overflows once the cumulative decay
// underflows), nor a difference of prefix sums (inf - inf at a reset).
// Inside a chunk this form runs the token recurrence rather than the quadratic products of the
// scalar decay's chunked kernel: with a decay per component, (Q K^T) ⊙ Gamma is no longer one
// matrix product (each key component has its own Gamma).
#include "rill/backend/cpu/vector_decay.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include "rill/backend/cpu/gated_state_util.h"
#include "rill/backend/cpu/gemm.h"
#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/simd_vectors.h"

namespace rill::cpu {

namespace {

using namespace gated_state;
using namespace simd;

// exp_array (the same exp_nonpos, lane-wise) with AVX-512 where simd_level() allows: the factors
// of both sides are T (Dk + Dv) exps a pass.
template <class T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) void exp_array_avx512(const T* x,
                                                                                    T* y,
                                                                                    int64_t n) {
#pragma omp simd simdlen(64 / sizeof(T))
  for (int64_t i = 0; i < n; ++i) y[i] = exp_nonpos(x[i]);
}
template <class T>
void exp_factors(const T* x, T* y, int64_t n) {
  if (simd_level() >= SimdLevel::avx512)
    exp_array_avx512(x, y, n);
  else
    exp_array(x, y, n);
}

// exp of log-decays [N, T, D] as factors [N, T+1, D] with a row of ones at T; an absent decay
// becomes a row of ones read with row stride 0.
template <class T>
struct Factors {
  Tensor buf;
  const T* p = nullptr;
  int64_t ld = 0, per = 0;  // row stride, rows per sequence (T+1; 0 when absent)
  const T* at(int64_t b, int64_t t) const { return p + (b * per + t) * ld; }
};

template <class T>
Factors<T> factors_of(const Tensor& g, int64_t n, int64_t len, int64_t d) {
  Factors<T> f;
  if (!g.defined()) {
    f.buf = Tensor::ones({d}, dtype_of<T>);
    f.p = f.buf.template data<T>();
    return f;
  }
  f.buf = Tensor::empty({n, len + 1, d}, dtype_of<T>);
  f.ld = d, f.per = len + 1;
  const T* gp = g.data<T>();
  T* op = f.buf.template data<T>();
#pragma omp parallel for schedule(static) if (n * len * d > kParallelMinWork / 8)
  for (int64_t b = 0; b < n; ++b) {
    exp_factors(gp + b * len * d, op + b * (len + 1) * d, len * d);
    std::fill(op + (b * (len + 1) + len) * d, op + (b + 1) * (len + 1) * d, T(1));
  }
  f.p = f.buf.template data<T>();
  return f;
}

// One scan over len tokens of a slab S [ds, dw]. Token t (0-based in the
// run; reverse runs go from len-1 down) reads row t of key [., ds], val [., dw], qry [., ds],
// its row factors rdec + (t + shift) * ldr [ds] and column factors cdec + (t + shift) * ldc
// [dw]; a reverse scan reads the next token's factors (shift 1), and 1 past the run's end.
template <class T>
struct VScan {
  int64_t len = 0, ds = 0, dw = 0;
  const T *key = nullptr, *val = nullptr, *qry = nullptr;  // qry null: no readout
  int64_t ldk = 0, ldv = 0, ldq = 0;
  T* out = nullptr;
  int64_t ldo = 0;
  const T *rdec = nullptr, *cdec = nullptr, *ones = nullptr;
  int64_t ldr = 0, ldc = 0;
  int shift = 0;
  bool exclusive = false, reverse = false;
  const T* init = nullptr;  // element (x, c) at init[x * init_rs + c * init_cs]; null = zeros
  int64_t init_rs = 0, init_cs = 0;
  T* fin = nullptr;  // the final slab, same addressing; null = not wanted
  int64_t fin_rs = 0, fin_cs = 0;
  // A second readout along the rows (fused scans, exclusive only): hout [., ds] gets
  // (D ⊙ S_prev) hqry_t, hqry [., dw]. Null: none.
  const T* hqry = nullptr;
  int64_t ldh = 0;
  T* hout = nullptr;
  int64_t ldho = 0;
};

// The scan's kernel, as linear_attention.cpp's scan_group: a group of columns is NB vectors
// (GCC vector types, AVX-512 or AVX2, chosen at run time), and NT tokens share each load and
// store of a state row, their values, column factors and readouts held in registers. Per state
// element and token, always in this order (lane-wise, so a column's result does not depend on
// its group, its lane or the vector width):
//   m = r * cd;  inclusive: s = m * s + k * v, o += q * s;  exclusive: s = m * s, o += q * s,
//   s += k * v  (r the row factor, cd the column factor).
// Token t's row and column factors (see VScan: shifted, ones past the end).
template <class T>
[[gnu::always_inline]] inline const T* row_factors(const VScan<T>& p, int64_t t) {
  return p.shift > 0 && t + p.shift >= p.len ? p.ones : p.rdec + (t + p.shift) * p.ldr;
}
template <class T>
[[gnu::always_inline]] inline const T* col_factors(const VScan<T>& p, int64_t t) {
  return p.shift > 0 && t + p.shift >= p.len ? p.ones : p.cdec + (t + p.shift) * p.ldc;
}

// NT tokens (indices tok[]) through the slab S [ds, NB * lanes] of columns [c0, c0 + width).
template <bool Excl, bool Read, class T, class V, int NB, int NT>
[[gnu::always_inline]] inline void vscan_tokens(const VScan<T>& p, const int64_t* tok, int64_t c0,
                                                int width, T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  constexpr int64_t lds = NB * kLanes;
  V vv[NT][NB], cd[NT][NB], o[NT][NB];
  const T* rd[NT];
  const T* kr[NT];
  const T* qr[NT];
  for (int t = 0; t < NT; ++t) {
    rd[t] = row_factors(p, tok[t]);
    kr[t] = p.key + tok[t] * p.ldk;
    qr[t] = Read ? p.qry + tok[t] * p.ldq : nullptr;
    const T* cp = col_factors(p, tok[t]) + c0;
    const T* vp = p.val + tok[t] * p.ldv + c0;
    for (int j = 0; j < NB; ++j) {
      vv[t][j] = load_part<V>(vp + j * kLanes, width - j * kLanes);
      cd[t][j] = load_part<V>(cp + j * kLanes, width - j * kLanes);
      o[t][j] = V{};
    }
  }
  for (int64_t x = 0; x < p.ds; ++x) {
    V s[NB];
    for (int j = 0; j < NB; ++j) s[j] = load<V>(S + x * lds + j * kLanes);
    for (int t = 0; t < NT; ++t) {
      const T r = rd[t][x], kx = kr[t][x];
      const T qx = Read ? qr[t][x] : T(0);
      for (int j = 0; j < NB; ++j) {
        const V m = r * cd[t][j];
        if constexpr (Excl) {
          s[j] = m * s[j];
          if constexpr (Read) o[t][j] += qx * s[j];
          s[j] += kx * vv[t][j];
        } else {
          s[j] = m * s[j] + kx * vv[t][j];
          if constexpr (Read) o[t][j] += qx * s[j];
        }
      }
    }
    for (int j = 0; j < NB; ++j) store(S + x * lds + j * kLanes, s[j]);
  }
  if constexpr (Read)
    for (int t = 0; t < NT; ++t)
      for (int j = 0; j < NB; ++j)
        store_part(p.out + tok[t] * p.ldo + c0 + j * kLanes, o[t][j], width - j * kLanes);
}

// In-register transpose of L vectors of L lanes (m[i][l] -> m[l][i]): log2 L stages, each
// swapping the off-diagonal blocks of size h between rows i and i + h.
template <class I, int L>
constexpr std::array<I, 2 * L * 8> transpose_indices() {
  std::array<I, 2 * L * 8> a{};
  int stage = 0;
  for (int h = L / 2; h >= 1; h /= 2, ++stage)
    for (int l = 0; l < L; ++l) {
      a[stage * 2 * L + l] = static_cast<I>((l & h) ? L + l - h : l);      // row i
      a[stage * 2 * L + L + l] = static_cast<I>((l & h) ? L + l : l + h);  // row i + h
    }
  return a;
}
template <class I, int L>
constexpr std::array<I, 2 * L * 8> kTransposeIndices = transpose_indices<I, L>();

template <class V, class T>
[[gnu::always_inline]] inline void transpose_block(V* m) {
  constexpr int L = sizeof(V) / sizeof(T);
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef I IV __attribute__((vector_size(sizeof(V))));
  const I* idx = kTransposeIndices<I, L>.data();
  int stage = 0;
  for (int h = L / 2; h >= 1; h /= 2, ++stage) {
    const IV ia = load<IV>(idx + stage * 2 * L), ib = load<IV>(idx + stage * 2 * L + L);
    for (int i = 0; i < L; ++i)
      if (!(i & h)) {
        const V a = m[i], b = m[i + h];
        m[i] = __builtin_shuffle(a, b, ia);
        m[i + h] = __builtin_shuffle(a, b, ib);
      }
  }
}

// The slab S [ds, lds] (width columns used, the rest zero) from src element (x, c) at
// src[x * rs + c * cs] (null: zeros), and back. The fused scans' slabs are the transposes of the
// callers' [Dk,Dv] states (rs = 1): those go by L x L blocks transposed in registers.
template <class T, class V>
[[gnu::always_inline]] inline void slab_in(T* S, int64_t lds, int64_t ds, int width, const T* src,
                                           int64_t rs, int64_t cs) {
  constexpr int L = sizeof(V) / sizeof(T);
  int64_t x0 = 0;
  if (src && rs == 1) {
    for (; x0 + L <= ds; x0 += L)
      for (int64_t cb = 0; cb < lds; cb += L) {
        V m[L];
        for (int i = 0; i < L; ++i) m[i] = cb + i < width ? load<V>(src + x0 + (cb + i) * cs) : V{};
        transpose_block<V, T>(m);
        for (int i = 0; i < L; ++i) store(S + (x0 + i) * lds + cb, m[i]);
      }
  }
  if (src && cs == 1) {  // rows
    for (; x0 < ds; ++x0)
      for (int64_t cb = 0; cb < lds; cb += L)
        store(S + x0 * lds + cb, load_part<V>(src + x0 * rs + cb, static_cast<int>(width - cb)));
  }
  for (int64_t x = x0; x < ds; ++x)
    for (int64_t c = 0; c < lds; ++c)
      S[x * lds + c] = (c < width && src) ? src[x * rs + c * cs] : T(0);
}
template <class T, class V>
[[gnu::always_inline]] inline void slab_out(const T* S, int64_t lds, int64_t ds, int width, T* dst,
                                            int64_t rs, int64_t cs) {
  constexpr int L = sizeof(V) / sizeof(T);
  int64_t x0 = 0;
  if (rs == 1) {
    for (; x0 + L <= ds; x0 += L)
      for (int64_t cb = 0; cb < lds; cb += L) {
        V m[L];
        for (int i = 0; i < L; ++i) m[i] = load<V>(S + (x0 + i) * lds + cb);
        transpose_block<V, T>(m);
        for (int i = 0; i < L && cb + i < width; ++i) store(dst + x0 + (cb + i) * cs, m[i]);
      }
  }
  if (cs == 1) {  // rows
    for (; x0 < ds; ++x0)
      for (int64_t cb = 0; cb < lds; cb += L)
        store_part(dst + x0 * rs + cb, load<V>(S + x0 * lds + cb), static_cast<int>(width - cb));
  }
  for (int64_t x = x0; x < ds; ++x)
    for (int c = 0; c < width; ++c) dst[x * rs + c * cs] = S[x * lds + c];
}

// Tokens this far ahead are prefetched (their key, query, value and factor rows).
constexpr int64_t kPrefetch = 32;

template <class T>
[[gnu::always_inline]] inline void prefetch_row(const T* p, int64_t n) {
  for (int64_t x = 0; x < n; x += 64 / static_cast<int64_t>(sizeof(T))) __builtin_prefetch(p + x);
}
template <class T>
[[gnu::always_inline]] inline void prefetch_token(const VScan<T>& p, int64_t t, int64_t c0,
                                                  int width) {
  prefetch_row(p.key + t * p.ldk, p.ds);
  if (p.qry) prefetch_row(p.qry + t * p.ldq, p.ds);
  prefetch_row(p.val + t * p.ldv + c0, width);
  prefetch_row(row_factors(p, t), p.ds);
  prefetch_row(col_factors(p, t) + c0, width);
}

// Tokens per pass over the state (T = 4096, Dk = 64, Dv = 65, fwd+bwd on 2 cores: 2 and 3 about
// equal, 4 spills and was ~10% slower).
constexpr int kBlock = 3;

template <bool Excl, bool Read, class T, class V, int NB, int NT>
[[gnu::always_inline]] inline void vscan_tail(const VScan<T>& p, const int64_t* tok, int rest,
                                              int64_t c0, int width, T* S) {
  if constexpr (NT > 0) {
    if (rest == NT)
      vscan_tokens<Excl, Read, T, V, NB, NT>(p, tok, c0, width, S);
    else
      vscan_tail<Excl, Read, T, V, NB, NT - 1>(p, tok, rest, c0, width, S);
  }
}

// The whole scan for columns [c0, c0 + width), width <= NB * lanes, with slab scratch S.
template <bool Excl, bool Read, class T, class V, int NB>
[[gnu::always_inline]] inline void vscan_group(const VScan<T>& p, int64_t c0, int width, T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  constexpr int64_t lds = NB * kLanes;
  slab_in<T, V>(S, lds, p.ds, width, p.init ? p.init + c0 * p.init_cs : nullptr, p.init_rs,
                p.init_cs);
  int64_t tok[kBlock];
  auto index = [&](int64_t j) { return p.reverse ? p.len - 1 - j : j; };
  int64_t i = 0;
  for (; i + kBlock <= p.len; i += kBlock) {
    for (int t = 0; t < kBlock; ++t) tok[t] = index(i + t);
    if (i + kPrefetch + kBlock <= p.len)
      for (int t = 0; t < kBlock; ++t) prefetch_token(p, index(i + kPrefetch + t), c0, width);
    vscan_tokens<Excl, Read, T, V, NB, kBlock>(p, tok, c0, width, S);
  }
  const int rest = static_cast<int>(p.len - i);
  for (int t = 0; t < rest; ++t) tok[t] = index(i + t);
  vscan_tail<Excl, Read, T, V, NB, kBlock - 1>(p, tok, rest, c0, width, S);
  if (p.fin) slab_out<T, V>(S, lds, p.ds, width, p.fin + c0 * p.fin_cs, p.fin_rs, p.fin_cs);
}

// At most 4 vectors a group with AVX-512 (64 f32 columns), 2 with AVX2's 16 registers.
constexpr int kMaxVectorsAvx512 = 4, kMaxVectorsAvx2 = 2;

template <bool Excl, bool Read, class T, class V, int MaxNB>
[[gnu::always_inline]] inline void vscan_width(const VScan<T>& p, int64_t c0, int width, T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  switch ((width + kLanes - 1) / kLanes) {
    case 1:
      vscan_group<Excl, Read, T, V, 1>(p, c0, width, S);
      break;
    case 2:
      vscan_group<Excl, Read, T, V, 2>(p, c0, width, S);
      break;
    case 3:
      if constexpr (MaxNB >= 3) vscan_group<Excl, Read, T, V, 3>(p, c0, width, S);
      break;
    case 4:
      if constexpr (MaxNB >= 4) vscan_group<Excl, Read, T, V, 4>(p, c0, width, S);
      break;
    default:
      break;
  }
}

template <class T, class V, int MaxNB>
[[gnu::always_inline]] inline void vscan_any(const VScan<T>& p, int64_t c0, int width, T* S) {
  if (p.exclusive) {
    if (p.qry)
      vscan_width<true, true, T, V, MaxNB>(p, c0, width, S);
    else
      vscan_width<true, false, T, V, MaxNB>(p, c0, width, S);
  } else {
    if (p.qry)
      vscan_width<false, true, T, V, MaxNB>(p, c0, width, S);
    else
      vscan_width<false, false, T, V, MaxNB>(p, c0, width, S);
  }
}

// A few last columns (a value size of 64 + 1, the normaliser's column) would each cost a whole
// vector per state row in the row kernel, mostly spare lanes; they run here instead, each column
// of the slab a vector over its rows: per token s = m * s + k v (same per-element operations as
// the row kernel, m = r * cd), the readout q . s summed over the rows by lanes of one 64-byte
// block, the lanes then in order (so the same bits with either vector width). Which columns are
// tail columns depends only on dw (tail_columns), never on the grouping or thread count.
constexpr int64_t kTailMax = 4;
int64_t tail_columns(int64_t dw) {
  const int64_t r = dw % 16;
  return dw > 16 && r <= kTailMax ? r : 0;
}

template <bool Excl, bool Read, class T, class V>
[[gnu::always_inline]] inline void vscan_cols(const VScan<T>& p, int64_t c0, int64_t ncols, T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T), kW = 64 / sizeof(T), kNV = kW / kLanes;
  const int64_t dsp = (p.ds + kW - 1) / kW * kW;  // rows padded to whole blocks (zeros)
  for (int64_t i = 0; i < ncols; ++i)
    for (int64_t x = 0; x < dsp; ++x)
      S[i * dsp + x] = (x < p.ds && p.init) ? p.init[x * p.init_rs + (c0 + i) * p.init_cs] : T(0);
  for (int64_t j = 0; j < p.len; ++j) {
    const int64_t t = p.reverse ? p.len - 1 - j : j;
    const T* rd = row_factors(p, t);
    const T* cd = col_factors(p, t) + c0;
    const T* kt = p.key + t * p.ldk;
    const T* qt = Read ? p.qry + t * p.ldq : nullptr;
    const T* vt = p.val + t * p.ldv + c0;
    for (int64_t i = 0; i < ncols; ++i) {
      T* sc = S + i * dsp;
      const T cdi = cd[i], vi = vt[i];
      V acc[kNV];
      for (int u = 0; u < kNV; ++u) acc[u] = V{};
      for (int64_t xb = 0; xb < dsp; xb += kW)
        for (int u = 0; u < kNV; ++u) {
          const int64_t x = xb + u * kLanes;
          const int n = static_cast<int>(std::min<int64_t>(kLanes, p.ds - x));
          if (n <= 0) continue;
          const V r = load_part<V>(rd + x, n), k = load_part<V>(kt + x, n);
          V sv = load<V>(sc + x);
          const V m = r * cdi;
          if constexpr (Excl) {
            sv = m * sv;
            if constexpr (Read) acc[u] += load_part<V>(qt + x, n) * sv;
            sv += k * vi;
          } else {
            sv = m * sv + k * vi;
            if constexpr (Read) acc[u] += load_part<V>(qt + x, n) * sv;
          }
          store(sc + x, sv);
        }
      if constexpr (Read) {
        T lanes[kW];
        for (int u = 0; u < kNV; ++u) store(lanes + u * kLanes, acc[u]);
        T o = 0;
        for (int l = 0; l < kW; ++l) o += lanes[l];
        p.out[t * p.ldo + c0 + i] = o;
      }
    }
  }
  if (p.fin)
    for (int64_t i = 0; i < ncols; ++i)
      for (int64_t x = 0; x < p.ds; ++x) p.fin[x * p.fin_rs + (c0 + i) * p.fin_cs] = S[i * dsp + x];
}

template <class T, class V>
[[gnu::always_inline]] inline void vscan_cols_any(const VScan<T>& p, int64_t c0, int64_t ncols,
                                                  T* S) {
  if (p.exclusive) {
    if (p.qry)
      vscan_cols<true, true, T, V>(p, c0, ncols, S);
    else
      vscan_cols<true, false, T, V>(p, c0, ncols, S);
  } else {
    if (p.qry)
      vscan_cols<false, true, T, V>(p, c0, ncols, S);
    else
      vscan_cols<false, false, T, V>(p, c0, ncols, S);
  }
}

template <class T>
void vscan_avx2(const VScan<T>& p, int64_t c0, int width, T* S) {
  vscan_any<T, Vec32<T>, kMaxVectorsAvx2>(p, c0, width, S);
}
template <class T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) void vscan_avx512(const VScan<T>& p,
                                                                                int64_t c0,
                                                                                int width, T* S) {
  vscan_any<T, Vec64<T>, kMaxVectorsAvx512>(p, c0, width, S);
}
template <class T>
void vscan_cols_avx2(const VScan<T>& p, int64_t c0, int64_t ncols, T* S) {
  vscan_cols_any<T, Vec32<T>>(p, c0, ncols, S);
}
template <class T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) void vscan_cols_avx512(
    const VScan<T>& p, int64_t c0, int64_t ncols, T* S) {
  vscan_cols_any<T, Vec64<T>>(p, c0, ncols, S);
}

// Fused scans: the backward's two exclusive scans of one state in its two layouts (dq' and out'
// of S, dk' and dv' of U) as one scan of the [Dv, Dk] layout with a second readout along the
// rows, (D ⊙ S_prev) hqry_t, one token per pass over the state. A row's readout is summed lane-
// wise over the row's vectors (in order), then over the lanes by a fixed tree, L rows at a time
// (L the lanes): so a whole row is one unit, whatever the thread count. Used with AVX-512 for
// rows of at most 4 vectors (fuses()); otherwise the two scans run apart.

// The lane sums of L vectors v[0..L) as one vector: lane i = the sum of v[i]'s lanes. Pairs of
// neighbours are folded (each row's lanes halved) until each row has one lane. The shuffles'
// index vectors, per level (h: each row's lanes in a vector before it), lo then hi:
template <class I, int L>
constexpr std::array<I, 2 * L * 8> fold_indices() {
  std::array<I, 2 * L * 8> a{};
  int level = 0;
  for (int h = L; h > 1; h /= 2, ++level)
    for (int j = 0; j < 2 * L / h; ++j)
      for (int i = 0; i < h / 2; ++i) {
        const int src = j < L / h ? j * h + i : L + (j - L / h) * h + i;
        a[level * 2 * L + j * (h / 2) + i] = static_cast<I>(src);
        a[level * 2 * L + L + j * (h / 2) + i] = static_cast<I>(src + h / 2);
      }
  return a;
}
template <class I, int L>
constexpr std::array<I, 2 * L * 8> kFoldIndices = fold_indices<I, L>();

template <class V, class T>
[[gnu::always_inline]] inline V lane_sums(V* v) {
  constexpr int L = sizeof(V) / sizeof(T);
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef I IV __attribute__((vector_size(sizeof(V))));
  const I* idx = kFoldIndices<I, L>.data();
  int n = L, level = 0;
  for (int h = L; h > 1; h /= 2, ++level) {
    const IV lo = load<IV>(idx + level * 2 * L), hi = load<IV>(idx + level * 2 * L + L);
    for (int q = 0; q < n / 2; ++q)
      v[q] = __builtin_shuffle(v[2 * q], v[2 * q + 1], lo) +
             __builtin_shuffle(v[2 * q], v[2 * q + 1], hi);
    n /= 2;
  }
  return v[0];
}

template <class T, class V, int NB>
[[gnu::always_inline]] inline void vscan_fused_group(const VScan<T>& p, T* S) {
  constexpr int L = sizeof(V) / sizeof(T);
  constexpr int64_t lds = NB * L;
  const int width = static_cast<int>(p.dw);
  slab_in<T, V>(S, lds, p.ds, width, p.init, p.init_rs, p.init_cs);
  for (int64_t j = 0; j < p.len; ++j) {
    const int64_t t = p.reverse ? p.len - 1 - j : j;
    if (j + kPrefetch < p.len) {
      const int64_t tp = p.reverse ? t - kPrefetch : t + kPrefetch;
      prefetch_token(p, tp, 0, width);
      prefetch_row(p.hqry + tp * p.ldh, p.dw);
    }
    const T* rd = row_factors(p, t);
    const T* cp = col_factors(p, t);
    const T* kt = p.key + t * p.ldk;
    const T* qt = p.qry + t * p.ldq;
    const T* vp = p.val + t * p.ldv;
    const T* hp = p.hqry + t * p.ldh;
    T* ho = p.hout + t * p.ldho;
    V vv[NB], cd[NB], hq[NB], o[NB];
    for (int b = 0; b < NB; ++b) {
      vv[b] = load_part<V>(vp + b * L, width - b * L);
      cd[b] = load_part<V>(cp + b * L, width - b * L);
      hq[b] = load_part<V>(hp + b * L, width - b * L);
      o[b] = V{};
    }
    for (int64_t xb = 0; xb < p.ds; xb += L) {
      const int rows = static_cast<int>(std::min<int64_t>(L, p.ds - xb));
      V h[L];
      for (int i = 0; i < L; ++i) {
        h[i] = V{};
        if (i >= rows) continue;
        const int64_t x = xb + i;
        T* row = S + x * lds;
        const T r = rd[x], kx = kt[x], qx = qt[x];
        for (int b = 0; b < NB; ++b) {
          V sv = load<V>(row + b * L);
          sv = (r * cd[b]) * sv;
          o[b] += qx * sv;
          h[i] += sv * hq[b];
          sv += kx * vv[b];
          store(row + b * L, sv);
        }
      }
      store_part(ho + xb, lane_sums<V, T>(h), rows);
    }
    for (int b = 0; b < NB; ++b) store_part(p.out + t * p.ldo + b * L, o[b], width - b * L);
  }
  if (p.fin) slab_out<T, V>(S, lds, p.ds, width, p.fin, p.fin_rs, p.fin_cs);
}

template <class T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) void vscan_fused_avx512(
    const VScan<T>& p, T* S) {
  using V = Vec64<T>;
  constexpr int L = sizeof(V) / sizeof(T);
  switch ((p.dw + L - 1) / L) {
    case 1:
      vscan_fused_group<T, V, 1>(p, S);
      break;
    case 2:
      vscan_fused_group<T, V, 2>(p, S);
      break;
    case 3:
      vscan_fused_group<T, V, 3>(p, S);
      break;
    case 4:
      vscan_fused_group<T, V, 4>(p, S);
      break;
    default:
      break;
  }
}

// Whether a [ds, dw] pair of scans runs fused (a whole row in at most 4 AVX-512 vectors).
template <class T>
bool fuses(int64_t dw) {
  return simd_level() >= SimdLevel::avx512 &&
         dw <= kMaxVectorsAvx512 * 64 / static_cast<int64_t>(sizeof(T));
}

// Every scan, split into groups of columns (and its tail columns, one unit), all units in
// parallel; groups narrow while there are fewer units than threads (a column's result does not
// depend on its group).
template <class T>
void run_vscans(const std::vector<VScan<T>>& scans) {
  const bool wide = simd_level() >= SimdLevel::avx512;
  const int64_t lanes = (wide ? 64 : 32) / static_cast<int64_t>(sizeof(T));
  const int threads = omp_get_max_threads();
  int64_t gw = lanes * (wide ? kMaxVectorsAvx512 : kMaxVectorsAvx2), work = 0, max_ds = 0;
  auto count_units = [&](int64_t g) {
    int64_t n = 0;
    for (const VScan<T>& p : scans) {
      const int64_t tail = p.hout ? 0 : tail_columns(p.dw);
      n += p.hout ? 1 : (p.dw - tail + g - 1) / g + (tail > 0);
    }
    return n;
  };
  while (gw > lanes && count_units(gw) < threads) gw /= 2;
  struct Unit {
    int64_t scan, col, tail;  // tail: a unit of tail columns, this many; -1: a fused scan
  };
  std::vector<Unit> units;
  bool fused = false;
  for (size_t s = 0; s < scans.size(); ++s) {
    if (scans[s].hout) {  // a fused scan: one unit, the whole row
      units.push_back({int64_t(s), 0, -1});
      fused = true;
    } else {
      const int64_t tail = tail_columns(scans[s].dw), main = scans[s].dw - tail;
      for (int64_t c = 0; c < main; c += gw) units.push_back({int64_t(s), c, 0});
      if (tail > 0) units.push_back({int64_t(s), main, tail});
    }
    work += scans[s].len * scans[s].ds * scans[s].dw;
    max_ds = std::max(max_ds, scans[s].ds);
  }
  const int64_t nu = static_cast<int64_t>(units.size());
  if (nu == 0) return;
  const int64_t block = 64 / static_cast<int64_t>(sizeof(T));
  const int64_t slab =
      std::max<int64_t>({1, max_ds * gw, kTailMax * ((max_ds + block - 1) / block * block),
                         fused ? max_ds * kMaxVectorsAvx512 * block : 0});
  Tensor scratch = Tensor::empty({threads, slab}, dtype_of<T>);
  T* sp = scratch.data<T>();
#pragma omp parallel for schedule(dynamic, 1) if (nu > 1 && work > kParallelMinWork)
  for (int64_t u = 0; u < nu; ++u) {
    const VScan<T>& p = scans[units[u].scan];
    const int64_t c = units[u].col;
    T* S = sp + omp_get_thread_num() * slab;
    if (units[u].tail < 0) {
      vscan_fused_avx512<T>(p, S);
      continue;
    }
    if (units[u].tail > 0) {
      if (wide)
        vscan_cols_avx512<T>(p, c, units[u].tail, S);
      else
        vscan_cols_avx2<T>(p, c, units[u].tail, S);
      continue;
    }
    const int width = static_cast<int>(std::min(gw, p.dw - tail_columns(p.dw) - c));
    if (wide)
      vscan_avx512<T>(p, c, width, S);
    else
      vscan_avx2<T>(p, c, width, S);
  }
}

// A run of tokens [t0, t0 + m) of sequence b with its own start state and end-state gradient:
// a whole sequence in the recurrent form, a chunk in the chunked form.
template <class T>
struct Segment {
  int64_t b = 0, t0 = 0, m = 0;
  const T* init = nullptr;  // [Dk,Dv] start state; null = zeros
  T* fin = nullptr;         // [Dk,Dv] end state (forward); null = not wanted
  const T* dsf = nullptr;   // [Dk,Dv] gradient of the end state (backward)
  T* ds0 = nullptr;         // [Dk,Dv] gradient of the start state (backward); null = not wanted
};

// The forward scan of a segment over S [Dk, Dv]: key k, val v, qry q (null: no readout).
template <class T>
VScan<T> forward_scan(const GatedStateArgs& a, const Factors<T>& fa, const Factors<T>& fb,
                      const Segment<T>& s, const T* q, T* out) {
  const int64_t len = a.len(), dk = a.dk(), dv = a.dv(), row = s.b * len + s.t0;
  VScan<T> p;
  p.len = s.m, p.ds = dk, p.dw = dv;
  p.key = a.k.data<T>() + row * dk, p.ldk = dk;
  p.val = a.v.data<T>() + row * dv, p.ldv = dv;
  p.qry = q ? q + row * dk : nullptr, p.ldq = dk;
  p.out = out ? out + row * dv : nullptr, p.ldo = dv;
  p.rdec = fa.at(s.b, s.t0), p.ldr = fa.ld;
  p.cdec = fb.at(s.b, s.t0), p.ldc = fb.ld;
  p.ones =
      fa.ld ? fb.buf.template data<T>() : fa.buf.template data<T>();  // unused by forward scans
  p.init = s.init, p.init_rs = dv, p.init_cs = 1;
  p.fin = s.fin, p.fin_rs = dv, p.fin_cs = 1;
  return p;
}

template <class T>
void forward_segments(const GatedStateArgs& a, const Factors<T>& fa, const Factors<T>& fb,
                      const std::vector<Segment<T>>& segs, T* out) {
  std::vector<VScan<T>> scans;
  for (const Segment<T>& s : segs)
    scans.push_back(forward_scan(a, fa, fb, s, out ? a.q.data<T>() : nullptr, out));
  run_vscans(scans);
}

// The backward's epilogue for one segment (see backward_segments); sd = its S_{T-2}, becomes Sd.
template <class T>
[[gnu::always_inline]] inline void epilogue_segment(const Segment<T>& s, const Factors<T>& fa,
                                                    const Factors<T>& fb, int64_t len, int64_t dkn,
                                                    int64_t dvn, const T* q, const T* k, const T* v,
                                                    const T* dout, T* sd, T* outx, T* dq, T* dk,
                                                    T* dv, T* dga, T* dgb) {
  const bool want_b = dgb != nullptr;
  const int64_t row0 = s.b * len + s.t0, last = row0 + s.m - 1;
  const T* ra = fa.at(s.b, s.t0 + s.m - 1);
  const T* cb = fb.at(s.b, s.t0 + s.m - 1);
  for (int64_t x = 0; x < dkn; ++x)
    for (int64_t c = 0; c < dvn; ++c)
      sd[x * dvn + c] *= (fa.ld ? ra[x] : T(1)) * (fb.ld ? cb[c] : T(1));
  const T* gl = dout + last * dvn;
  for (int64_t x = 0; x < dkn; ++x) dq[last * dkn + x] = dot(sd + x * dvn, gl, dvn);
  if (want_b) {  // summed over x in order, vectorised over c
    T* ol = outx + last * dvn;
    std::fill(ol, ol + dvn, T(0));
    for (int64_t x = 0; x < dkn; ++x) {
      const T qx = q[last * dkn + x];
#pragma omp simd
      for (int64_t c = 0; c < dvn; ++c) ol[c] += sd[x * dvn + c] * qx;
    }
  }
  std::vector<double> run_a(dga ? dkn : 0), run_b(want_b ? dvn : 0);
  if (dga)
    for (int64_t x = 0; x < dkn; ++x) run_a[x] = dot(s.dsf + x * dvn, sd + x * dvn, dvn);
  if (want_b)
    for (int64_t x = 0; x < dkn; ++x) {
      const T* dr = s.dsf + x * dvn;
      const T* sr = sd + x * dvn;
#pragma omp simd
      for (int64_t c = 0; c < dvn; ++c) run_b[c] += dr[c] * sr[c];
    }
  for (int64_t r = last; r >= row0; --r) {
    const T* qt = q + r * dkn;
    const T* kt = k + r * dkn;
    const T* vt = v + r * dvn;
    const T* gt = dout + r * dvn;
    T* dqt = dq + r * dkn;
    T* dkt = dk + r * dkn;
    T* dvt = dv + r * dvn;
    const bool inner = r < last;  // the last token's k-side term is s_final's diagonal pair
    if (dga)
      for (int64_t x = 0; x < dkn; ++x) {
        run_a[x] += double(qt[x]) * dqt[x] - (inner ? double(kt[x]) * dkt[x] : 0.0);
        dga[r * dkn + x] = static_cast<T>(run_a[x]);
      }
    if (want_b)
      for (int64_t c = 0; c < dvn; ++c) {
        run_b[c] += double(gt[c]) * outx[r * dvn + c] - (inner ? double(vt[c]) * dvt[c] : 0.0);
        dgb[r * dvn + c] = static_cast<T>(run_b[c]);
      }
    const T vg = dot(vt, gt, dvn), qk = dot(qt, kt, dkn);
    for (int64_t x = 0; x < dkn; ++x) {
      dqt[x] += vg * kt[x];
      dkt[x] += vg * qt[x];
    }
    for (int64_t c = 0; c < dvn; ++c) dvt[c] += qk * gt[c];
  }
  if (s.ds0) {
    const T* r0 = fa.at(s.b, s.t0);
    const T* c0 = fb.at(s.b, s.t0);
    for (int64_t x = 0; x < dkn; ++x)
      for (int64_t c = 0; c < dvn; ++c)
        s.ds0[x * dvn + c] *= (fa.ld ? r0[x] : T(1)) * (fb.ld ? c0[c] : T(1));
  }
}
template <class T>
void epilogue_avx2(const Segment<T>& s, const Factors<T>& fa, const Factors<T>& fb, int64_t len,
                   int64_t dkn, int64_t dvn, const T* q, const T* k, const T* v, const T* dout,
                   T* sd, T* outx, T* dq, T* dk, T* dv, T* dga, T* dgb) {
  epilogue_segment(s, fa, fb, len, dkn, dvn, q, k, v, dout, sd, outx, dq, dk, dv, dga, dgb);
}
template <class T>
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,prefer-vector-width=512"))) void
epilogue_avx512(const Segment<T>& s, const Factors<T>& fa, const Factors<T>& fb, int64_t len,
                int64_t dkn, int64_t dvn, const T* q, const T* k, const T* v, const T* dout, T* sd,
                T* outx, T* dq, T* dk, T* dv, T* dga, T* dgb) {
  epilogue_segment(s, fa, fb, len, dkn, dvn, q, k, v, dout, sd, outx, dq, dk, dv, dga, dgb);
}

// The recurrent backward of every segment (see the file comment). dq, dk, dv are written for
// the segments' tokens; dga, dgb (when non-null) too.
template <class T>
void backward_segments(const GatedStateArgs& a, const Factors<T>& fa, const Factors<T>& fb,
                       const std::vector<Segment<T>>& segs, const T* dout, T* dq, T* dk, T* dv,
                       T* dga, T* dgb) {
  const int64_t len = a.len(), dkn = a.dk(), dvn = a.dv(), sz = dkn * dvn;
  const int64_t ns = static_cast<int64_t>(segs.size());
  const T* q = a.q.data<T>();
  const T* k = a.k.data<T>();
  const T* v = a.v.data<T>();
  const bool want_b = dgb != nullptr;
  // Per segment: S_{T-2} (the state before the last token), U_0, and (for gb) the readouts out'.
  Tensor slast_t = Tensor::empty({std::max<int64_t>(1, ns * sz)}, dtype_of<T>);
  T* slast = slast_t.data<T>();
  Tensor outx_t = want_b ? Tensor::empty({a.n() * len * dvn}, dtype_of<T>) : Tensor();
  T* outx = want_b ? outx_t.data<T>() : nullptr;
  Tensor ones_t = Tensor::ones({std::max(dkn, dvn)}, dtype_of<T>);
  const T* ones = ones_t.data<T>();
  const bool fuse = fuses<T>(dkn);  // the [Dv,Dk] layout's rows hold the readouts of both
  std::vector<VScan<T>> scans;
  for (int64_t i = 0; i < ns; ++i) {
    const Segment<T>& s = segs[i];
    const int64_t row = s.b * len + s.t0;
    const int64_t before = std::max<int64_t>(0, s.m - 1);
    const T* g = dout + row * dvn;
    // dq'_t: S^T [Dv,Dk] (key v, val k), read out with G, stopping before the last token.
    VScan<T> p;
    p.len = before, p.ds = dvn, p.dw = dkn, p.exclusive = true;
    p.key = v + row * dvn, p.ldk = dvn, p.val = k + row * dkn, p.ldv = dkn;
    p.qry = g, p.ldq = dvn, p.out = dq + row * dkn, p.ldo = dkn;
    p.rdec = fb.at(s.b, s.t0), p.ldr = fb.ld, p.cdec = fa.at(s.b, s.t0), p.ldc = fa.ld;
    p.ones = ones;
    p.init = s.init, p.init_rs = 1, p.init_cs = dvn;
    p.fin = slast + i * sz, p.fin_rs = 1, p.fin_cs = dvn;
    if (want_b && fuse) {  // out' as the rows' readout with q
      p.hqry = q + row * dkn, p.ldh = dkn, p.hout = outx + row * dvn, p.ldho = dvn;
      scans.push_back(p);
    } else {
      scans.push_back(p);
      if (want_b) {  // out'_t: S [Dk,Dv], read out with q
        VScan<T> f = forward_scan(a, fa, fb, s, q, outx);
        f.len = before, f.exclusive = true, f.fin = nullptr, f.ones = ones;
        scans.push_back(f);
      }
    }
    // dv'_t: U [Dk,Dv] (key q, val G) from dS_final, read out with k; its end is U_0.
    p = VScan<T>{};
    p.len = s.m, p.ds = dkn, p.dw = dvn, p.exclusive = true, p.reverse = true, p.shift = 1;
    p.key = q + row * dkn, p.ldk = dkn, p.val = g, p.ldv = dvn;
    p.qry = k + row * dkn, p.ldq = dkn, p.out = dv + row * dvn, p.ldo = dvn;
    p.rdec = fa.at(s.b, s.t0), p.ldr = fa.ld, p.cdec = fb.at(s.b, s.t0), p.ldc = fb.ld;
    p.ones = ones;
    p.init = s.dsf, p.init_rs = dvn, p.init_cs = 1;
    p.fin = s.ds0, p.fin_rs = dvn, p.fin_cs = 1;
    T* const dv_out = p.out;
    if (!fuse) scans.push_back(p);
    // dk'_t: U^T [Dv,Dk] (key G, val q), read out with v (fused: dv' as its rows' readout).
    p = VScan<T>{};
    p.len = s.m, p.ds = dvn, p.dw = dkn, p.exclusive = true, p.reverse = true, p.shift = 1;
    p.key = g, p.ldk = dvn, p.val = q + row * dkn, p.ldv = dkn;
    p.qry = v + row * dvn, p.ldq = dvn, p.out = dk + row * dkn, p.ldo = dkn;
    p.rdec = fb.at(s.b, s.t0), p.ldr = fb.ld, p.cdec = fa.at(s.b, s.t0), p.ldc = fa.ld;
    p.ones = ones;
    p.init = s.dsf, p.init_rs = 1, p.init_cs = dvn;
    if (fuse) {
      p.hqry = k + row * dkn, p.ldh = dkn, p.hout = dv_out, p.ldho = dvn;
      p.fin = s.ds0, p.fin_rs = 1, p.fin_cs = dvn;
    }
    scans.push_back(p);
  }
  run_vscans(scans);
  // Epilogue per segment: the last token's forward readouts from S_{T-2}, the decays' per-token
  // terms, the diagonal pairs, the reverse sums, and ds0 = D_0 ⊙ U_0.
  const bool wide = simd_level() >= SimdLevel::avx512;
#pragma omp parallel for schedule(dynamic, 1) if (ns > 1 && a.n() * len * sz > kParallelMinWork)
  for (int64_t i = 0; i < ns; ++i) {
    const Segment<T>& s = segs[i];
    if (s.m == 0) continue;
    if (wide)
      epilogue_avx512(s, fa, fb, len, dkn, dvn, q, k, v, dout, slast + i * sz, outx, dq, dk, dv,
                      dga, dgb);
    else
      epilogue_avx2(s, fa, fb, len, dkn, dvn, q, k, v, dout, slast + i * sz, outx, dq, dk, dv, dga,
                    dgb);
  }
}

template <class T>
void recurrent_forward_impl(const GatedStateArgs& a, const Tensor& out, const Tensor& sf) {
  const int64_t n = a.n(), len = a.len(), sz = a.dk() * a.dv();
  const Factors<T> fa = factors_of<T>(a.ga, n, len, a.dk());
  const Factors<T> fb = factors_of<T>(a.gb, n, len, a.dv());
  std::vector<Segment<T>> segs(n);
  for (int64_t b = 0; b < n; ++b) {
    segs[b].b = b, segs[b].m = len;
    segs[b].init = a.s0.defined() ? a.s0.data<T>() + b * sz : nullptr;
    segs[b].fin = sf.data<T>() + b * sz;
  }
  forward_segments(a, fa, fb, segs, out.data<T>());
}

template <class T>
void recurrent_backward_impl(const GatedStateArgs& a, const Tensor& dout, const Tensor& dsf,
                             const GatedStateGrads& gr) {
  const int64_t n = a.n(), len = a.len(), sz = a.dk() * a.dv();
  const Factors<T> fa = factors_of<T>(a.ga, n, len, a.dk());
  const Factors<T> fb = factors_of<T>(a.gb, n, len, a.dv());
  std::vector<Segment<T>> segs(n);
  for (int64_t b = 0; b < n; ++b) {
    segs[b].b = b, segs[b].m = len;
    segs[b].init = a.s0.defined() ? a.s0.data<T>() + b * sz : nullptr;
    segs[b].dsf = dsf.data<T>() + b * sz;
    segs[b].ds0 = gr.ds0.defined() ? gr.ds0.data<T>() + b * sz : nullptr;
  }
  backward_segments(a, fa, fb, segs, dout.data<T>(), gr.dq.data<T>(), gr.dk.data<T>(),
                    gr.dv.data<T>(),
                    a.ga.defined() && gr.dga.defined() ? gr.dga.data<T>() : nullptr,
                    a.gb.defined() && gr.dgb.defined() ? gr.dgb.data<T>() : nullptr);
}

// The per-chunk factors of one side: whole[u, D] = exp(sum of g over chunk u) (the chunk's decay)
// and, per token i of the chunk, from_start[i, D] = exp(g_{c0} + .. + g_i) (null when absent).
template <class T>
void chunk_side_factors(const Chunks<T>& ch, const Tensor& g, int64_t d, Tensor& whole,
                        Tensor& from_start) {
  if (!g.defined()) return;
  const int64_t units = ch.n * ch.nc;
  whole = Tensor::empty({units, d}, dtype_of<T>);
  from_start = Tensor::empty({ch.n * ch.len, d}, dtype_of<T>);
  const T* gp = g.data<T>();
  T* wp = whole.data<T>();
  T* fp = from_start.data<T>();
#pragma omp parallel for schedule(static) if (units > 1 && ch.n * ch.len * d > kParallelMinWork / 8)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c, m = ch.rows(i);
    // Partial sums of g from the chunk start, in place in from_start, then exp.
    T* f = fp + t0 * d;
    for (int64_t x = 0; x < d; ++x) f[x] = gp[t0 * d + x];
    for (int64_t t = 1; t < m; ++t)
      for (int64_t x = 0; x < d; ++x) f[t * d + x] = f[(t - 1) * d + x] + gp[(t0 + t) * d + x];
    exp_factors(f, f, m * d);
    std::copy(f + (m - 1) * d, f + m * d, wp + u * d);
  }
}

// y [m, cols] = x ⊙ f row by row (f null: a copy).
template <class T>
void scaled_copy(const T* x, const T* f, int64_t m, int64_t cols, T* y) {
  for (int64_t i = 0; i < m * cols; ++i) y[i] = f ? x[i] * f[i] : x[i];
}

// Chunk segments of every sequence, each chunk's start state in states[u] (when states given).
template <class T>
std::vector<Segment<T>> chunk_segments(const Chunks<T>& ch, T* states) {
  std::vector<Segment<T>> segs(ch.n * ch.nc);
  const int64_t sz = ch.dk * ch.dv;
  for (int64_t u = 0; u < ch.n * ch.nc; ++u) {
    segs[u].b = u / ch.nc, segs[u].t0 = (u % ch.nc) * ch.c, segs[u].m = ch.rows(u % ch.nc);
    segs[u].fin = states + u * sz;
  }
  return segs;
}

// Every chunk's start state in states [n*nc, Dk, Dv] (and s_final when sf is given): each
// chunk's own end state from a zero start (with its outputs when out is given), then the prefix.
// wa, wb: the chunks' decays (chunk_side_factors; undefined when absent).
template <class T>
void chunk_start_states(const GatedStateArgs& a, const Chunks<T>& ch, const Factors<T>& fa,
                        const Factors<T>& fb, const Tensor& wa, const Tensor& wb, T* states, T* out,
                        T* sf) {
  forward_segments(a, fa, fb, chunk_segments(ch, states), out);
  const T* s0 = a.s0.defined() ? a.s0.data<T>() : nullptr;
#pragma omp parallel num_threads(ch.threads())
  chunk_prefix(ch, states, static_cast<const T*>(nullptr), s0, sf, false,
               wa.defined() ? wa.data<T>() : nullptr, wb.defined() ? wb.data<T>() : nullptr);
}

template <class T>
void chunked_forward_impl(const GatedStateArgs& a, int64_t chunk, const Tensor& out_,
                          const Tensor& sf) {
  const Chunks<T> ch = chunks_of<T>(a, chunk);
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc;
  const Factors<T> fa = factors_of<T>(a.ga, ch.n, ch.len, ch.dk);
  const Factors<T> fb = factors_of<T>(a.gb, ch.n, ch.len, ch.dv);
  Tensor states_t = Tensor::empty({std::max<int64_t>(1, units * sz)}, dtype_of<T>);
  T* states = states_t.data<T>();
  T* out = out_.data<T>();
  Tensor wa, sa, wb, sb;
  chunk_side_factors(ch, a.ga, ch.dk, wa, sa);
  chunk_side_factors(ch, a.gb, ch.dv, wb, sb);
  chunk_start_states(a, ch, fa, fb, wa, wb, states, out, sf.data<T>());
  const T* q = a.q.data<T>();
  const int threads = ch.threads();
  Tensor scratch = Tensor::empty({threads, ch.c * (ch.dk + ch.dv)}, dtype_of<T>);
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c, m = ch.rows(i);
      T* qs = scratch.data<T>() + omp_get_thread_num() * ch.c * (ch.dk + ch.dv);
      T* seen = qs + ch.c * ch.dk;  // [m, Dv] = (eA ⊙ Q) S_c
      scaled_copy(q + t0 * ch.dk, sa.defined() ? sa.data<T>() + t0 * ch.dk : nullptr, m, ch.dk, qs);
      gemm(false, false, m, ch.dv, ch.dk, T(1), qs, ch.dk, states + u * sz, ch.dv, T(0), seen,
           ch.dv);
      T* oc = out + t0 * ch.dv;
      const T* eb = sb.defined() ? sb.data<T>() + t0 * ch.dv : nullptr;
      for (int64_t x = 0; x < m * ch.dv; ++x) oc[x] += eb ? eb[x] * seen[x] : seen[x];
    }
  }
}

template <class T>
void chunked_backward_impl(const GatedStateArgs& a, const Tensor& dout_t, const Tensor& dsf_t,
                           int64_t chunk, const GatedStateGrads& gr) {
  const Chunks<T> ch = chunks_of<T>(a, chunk);
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc;
  const Factors<T> fa = factors_of<T>(a.ga, ch.n, ch.len, ch.dk);
  const Factors<T> fb = factors_of<T>(a.gb, ch.n, ch.len, ch.dv);
  Tensor states_t = Tensor::empty({std::max<int64_t>(1, 2 * units * sz)}, dtype_of<T>);
  T* states = states_t.data<T>();    // S_c, chunk starts
  T* dstates = states + units * sz;  // D_c = dL/dS_{c+1}, chunk ends
  Tensor wa, sa, wb, sb;
  chunk_side_factors(ch, a.ga, ch.dk, wa, sa);
  chunk_side_factors(ch, a.gb, ch.dv, wb, sb);
  chunk_start_states(a, ch, fa, fb, wa, wb, states, static_cast<T*>(nullptr),
                     static_cast<T*>(nullptr));
  const T* q = a.q.data<T>();
  const T* dout = dout_t.data<T>();
  const int threads = ch.threads();
  Tensor scratch = Tensor::empty({threads, ch.c * (ch.dk + ch.dv)}, dtype_of<T>);
  T* ds0 = gr.ds0.defined() ? gr.ds0.data<T>() : nullptr;
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);
    // Each chunk's term (eA ⊙ Q)^T (eB ⊙ G), then the reverse prefix from dS_final.
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c, m = ch.rows(i);
      T* qs = scratch.data<T>() + omp_get_thread_num() * ch.c * (ch.dk + ch.dv);
      T* gs = qs + ch.c * ch.dk;
      scaled_copy(q + t0 * ch.dk, sa.defined() ? sa.data<T>() + t0 * ch.dk : nullptr, m, ch.dk, qs);
      scaled_copy(dout + t0 * ch.dv, sb.defined() ? sb.data<T>() + t0 * ch.dv : nullptr, m, ch.dv,
                  gs);
      gemm(true, false, ch.dk, ch.dv, m, T(1), qs, ch.dk, gs, ch.dv, T(0), dstates + u * sz, ch.dv);
    }
    chunk_prefix(ch, dstates, static_cast<const T*>(nullptr), dsf_t.data<T>(), ds0, true,
                 wa.defined() ? wa.data<T>() : nullptr, wb.defined() ? wb.data<T>() : nullptr);
  }
  std::vector<Segment<T>> segs = chunk_segments(ch, states);
  for (int64_t u = 0; u < units; ++u) {
    segs[u].init = states + u * sz, segs[u].fin = nullptr;
    segs[u].dsf = dstates + u * sz;
  }
  backward_segments(a, fa, fb, segs, dout, gr.dq.data<T>(), gr.dk.data<T>(), gr.dv.data<T>(),
                    a.ga.defined() && gr.dga.defined() ? gr.dga.data<T>() : nullptr,
                    a.gb.defined() && gr.dgb.defined() ? gr.dgb.data<T>() : nullptr);
}

// One token per sequence: S <- (a b^T) ⊙ S + k v^T, out = S^T q, one pass over S.
template <class T>
void step_impl(const GatedStateArgs& a, const Tensor& s, const Tensor& out) {
  const int64_t dk = s.size(2), dv = s.size(3), n = s.size(0) * s.size(1);
  const T* qp = a.q.data<T>();
  const T* kp = a.k.data<T>();
  const T* vp = a.v.data<T>();
  const T* ga = a.ga.defined() ? a.ga.data<T>() : nullptr;
  const T* gb = a.gb.defined() ? a.gb.data<T>() : nullptr;
  T* sp = s.data<T>();
  T* op = out.data<T>();
#pragma omp parallel for schedule(static) if (n * dk * dv > 65536)
  for (int64_t b = 0; b < n; ++b) {
    std::vector<T> fa(dk, T(1)), fb(dv, T(1));
    if (ga) exp_array(ga + b * dk, fa.data(), dk);
    if (gb) exp_array(gb + b * dv, fb.data(), dv);
    T* o = op + b * dv;
    const T* vr = vp + b * dv;
    std::fill(o, o + dv, T(0));
    for (int64_t x = 0; x < dk; ++x) {
      T* row = sp + (b * dk + x) * dv;
      const T kx = kp[b * dk + x], qx = qp[b * dk + x], r = fa[x];
      const T* cb = fb.data();
#pragma omp simd
      for (int64_t c = 0; c < dv; ++c) {
        row[c] = r * cb[c] * row[c] + kx * vr[c];
        o[c] += row[c] * qx;
      }
    }
  }
}

}  // namespace

void vector_decay_recurrent_forward(const GatedStateArgs& a, const Tensor& out,
                                    const Tensor& s_final) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      recurrent_forward_impl<T>(a, out, s_final));
}

void vector_decay_recurrent_backward(const GatedStateArgs& a, const Tensor& dout,
                                     const Tensor& ds_final, const GatedStateGrads& grads) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      recurrent_backward_impl<T>(a, dout, ds_final, grads));
}

void vector_decay_chunked_forward(const GatedStateArgs& a, int64_t chunk, const Tensor& out,
                                  const Tensor& s_final) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      chunked_forward_impl<T>(a, chunk, out, s_final));
}

void vector_decay_chunked_backward(const GatedStateArgs& a, const Tensor& dout,
                                   const Tensor& ds_final, int64_t chunk,
                                   const GatedStateGrads& grads) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention", T,
                      chunked_backward_impl<T>(a, dout, ds_final, chunk, grads));
}

void vector_decay_step(const GatedStateArgs& a, const Tensor& s, const Tensor& out) {
  RILL_DISPATCH_FLOAT(a.q.dtype(), "linear_attention_step", T, step_impl<T>(a, s, out));
}

}  // namespace rill::cpu
