// Fast causal linear attention. Shapes: N = B*H sequences, T tokens, Dk key size, Dv value size.
//
// Recurrent form. One fused scan does everything: with a state S [Ds,Dw] it computes
//   S_t = S_init + sum_{j<=t} key_j val_j^T,   out_t = S_t^T qry_t,
// tokens in forward or reverse order. The forward is one scan (key=k, val=v, qry=q). The backward
// (the paper's Algorithm 1, no per-token state kept) is three:
//   dq_t = S_t g_t          forward scan of S^T: key=v, val=k, qry=g, init s0^T
//   dv_t = U_t^T k_t        reverse scan of U:   key=q, val=g, qry=k, init dS_final; ds0 = U_0
//   dk_t = U_t v_t          reverse scan of U^T: key=g, val=q, qry=v, init dS_final^T
// where U_t = dS_final + sum_{j>=t} q_j g_j^T. Sweeping U twice, once in each layout, costs
// 12 instead of 10 Dk*Dv FMAs per token but reads every output out along the state's rows,
// vectorised over Dw with no horizontal sums, and the three scans run in parallel.
// The state's columns evolve independently, so a unit of work is one (sequence, scan, group of
// columns), its state slab kept contiguous in per-thread scratch. Within a unit, 3 tokens share
// each load and store of a state row: 6 FMAs per state vector loaded and stored.
//
// Chunked form. Per chunk of C tokens with start state S_c:
//   out_c = Q_c S_c + tril(Q_c K_c^T) V_c,   S_{c+1} = S_c + K_c^T V_c,
// in three phases: every K_c^T V_c in parallel, an exclusive prefix sum over chunks (per state
// row, sequential in c), then every chunk's output in parallel. So chunks run in parallel even
// when B*H is 1. The backward recomputes the chunk-start states the same way, forms
// dS_{c+1} = dS_final + sum_{c'>c} Q_c'^T G_c' by a reverse prefix sum, then per chunk
//   dQ = G S_c^T + tril(G V^T) K,   dK = tril(G V^T)^T Q + V dS_{c+1}^T,
//   dV = tril(Q K^T)^T G + K dS_{c+1}.
// It stores 2 * T/C states, no per-token state.
#include "rill/backend/cpu/linear_attention.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "rill/backend/cpu/gemm.h"

// The vector helpers pass 64-byte vectors by value; they are always inlined, so no ABI is used.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace rill::cpu {

namespace {

// ---------------------------------------------------------------------------------------------
// Recurrent form: the fused scan.

template <class T>
struct ScanArgs {
  int64_t len = 0, ds = 0, dw = 0;  // tokens, state rows, state columns
  const T* key = nullptr;           // [len, ds], row stride ldk
  const T* val = nullptr;           // [len, dw]
  const T* qry = nullptr;           // [len, ds]
  T* out = nullptr;                 // [len, dw]
  int64_t ldk = 0, ldv = 0, ldq = 0, ldo = 0;
  const T* init = nullptr;  // state element (a, c) at init[a * init_rs + c * init_cs]; null = 0
  int64_t init_rs = 0, init_cs = 0;
  T* fin = nullptr;  // final state, same addressing; null = not wanted
  int64_t fin_rs = 0, fin_cs = 0;
  bool reverse = false;
};

template <class V, class T>
[[gnu::always_inline]] inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
[[gnu::always_inline]] inline void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}
// A vector from the first n (<= lanes) elements at p, the rest zero: the ragged last group of
// columns computes on zeros in its spare lanes and never writes them back.
template <class V, class T>
[[gnu::always_inline]] inline V load_part(const T* p, int n) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  if (n >= kLanes) return load<V>(p);
  V v{};
  for (int i = 0; i < kLanes; ++i)  // a fixed trip count: GCC cannot bound n for its checks
    if (i < n) v[i] = p[i];
  return v;
}
template <class V, class T>
[[gnu::always_inline]] inline void store_part(T* p, const V& v, int n) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  if (n >= kLanes) return store(p, v);
  for (int i = 0; i < kLanes; ++i)
    if (i < n) p[i] = v[i];
}

// NT tokens (indices tok[]) through the state slab S [ds, NB*lanes] of columns [c, c + width).
// Per state element and token: s += key*val, then out += qry*s (both FMAs, always in this order,
// so a column's result does not depend on which group or lane it lands in).
template <class T, class V, int NB, int NT>
[[gnu::always_inline]] inline void scan_tokens(const ScanArgs<T>& p, const int64_t* tok, int64_t c,
                                               int width, T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  constexpr int64_t lds = NB * kLanes;
  V vv[NT][NB], o[NT][NB];
  const T* kr[NT];
  const T* qr[NT];
  for (int t = 0; t < NT; ++t) {
    kr[t] = p.key + tok[t] * p.ldk;
    qr[t] = p.qry + tok[t] * p.ldq;
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
        s[j] += kk * vv[t][j];
        o[t][j] += qq * s[j];
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
template <class T, class V, int NB>
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
    scan_tokens<T, V, NB, kBlock>(p, tok, c, width, S);
  }
  const int rest = static_cast<int>(p.len - i);
  for (int t = 0; t < rest; ++t) tok[t] = index(i + t);
  static_assert(kBlock == 3, "the tail below handles up to 2 tokens");
  switch (rest) {
    case 2:
      scan_tokens<T, V, NB, 2>(p, tok, c, width, S);
      break;
    case 1:
      scan_tokens<T, V, NB, 1>(p, tok, c, width, S);
      break;
    default:
      break;
  }
  if (p.fin)
    for (int64_t a = 0; a < p.ds; ++a)
      for (int x = 0; x < width; ++x) p.fin[a * p.fin_rs + (c + x) * p.fin_cs] = S[a * lds + x];
}

// GCC vector types (the attribute cannot take a dependent element type, hence the table).
template <class T, int Bytes>
struct VecOf;
template <>
struct VecOf<float, 32> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<float, 64> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecOf<double, 32> {
  typedef double type __attribute__((vector_size(32)));
};
template <>
struct VecOf<double, 64> {
  typedef double type __attribute__((vector_size(64)));
};
template <class T>
using Vec32 = typename VecOf<T, 32>::type;
template <class T>
using Vec64 = typename VecOf<T, 64>::type;

// A group is at most 4 vectors wide with AVX-512 (64 f32 columns: a head of 64 reads its q and k
// rows once; T = 65536 ran at 150 GFLOP/s a core against 96 with two 32-column groups) and 2 with
// AVX2's 16 registers. Narrower groups use as many vectors as they fill.
constexpr int kMaxVectorsAvx512 = 4, kMaxVectorsAvx2 = 2;

template <class T, class V, int MaxNB>
[[gnu::always_inline]] inline void scan_any_group(const ScanArgs<T>& p, int64_t c, int width,
                                                  T* S) {
  constexpr int kLanes = sizeof(V) / sizeof(T);
  switch ((width + kLanes - 1) / kLanes) {
    case 1:
      scan_group<T, V, 1>(p, c, width, S);
      break;
    case 2:
      scan_group<T, V, 2>(p, c, width, S);
      break;
    case 3:
      if constexpr (MaxNB >= 3) scan_group<T, V, 3>(p, c, width, S);
      break;
    case 4:
      if constexpr (MaxNB >= 4) scan_group<T, V, 4>(p, c, width, S);
      break;
    default:
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

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  return yes;
}

template <class T>
int64_t vector_lanes() {
  return (has_avx512() ? 64 : 32) / static_cast<int64_t>(sizeof(T));
}

// Below this many state-element updates (a few us of work) a call stays on one thread: forking
// costs about as much, and far more when the machine is oversubscribed.
constexpr int64_t kParallelMinWork = 1 << 18;

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
void recurrent_forward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                            const Tensor& out, const Tensor& sf) {
  const int64_t n = q.size(0), len = q.size(1), dk = q.size(2), dv = v.size(2);
  std::vector<ScanArgs<T>> scans(n);
  for (int64_t b = 0; b < n; ++b) {
    ScanArgs<T>& p = scans[b];
    p.len = len, p.ds = dk, p.dw = dv;
    p.key = k.data<T>() + b * len * dk, p.ldk = dk;
    p.val = v.data<T>() + b * len * dv, p.ldv = dv;
    p.qry = q.data<T>() + b * len * dk, p.ldq = dk;
    p.out = out.data<T>() + b * len * dv, p.ldo = dv;
    if (s0.defined()) p.init = s0.data<T>() + b * dk * dv, p.init_rs = dv, p.init_cs = 1;
    p.fin = sf.data<T>() + b * dk * dv, p.fin_rs = dv, p.fin_cs = 1;
  }
  run_scans(scans);
}

template <class T>
void recurrent_backward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                             const Tensor& g, const Tensor& dsf, const Tensor& dq,
                             const Tensor& dk_, const Tensor& dv_, const Tensor& ds0) {
  const int64_t n = q.size(0), len = q.size(1), dk = q.size(2), dv = v.size(2);
  std::vector<ScanArgs<T>> scans;
  for (int64_t b = 0; b < n; ++b) {
    const T* qb = q.data<T>() + b * len * dk;
    const T* kb = k.data<T>() + b * len * dk;
    const T* vb = v.data<T>() + b * len * dv;
    const T* gb = g.data<T>() + b * len * dv;
    const T* dsfb = dsf.data<T>() + b * dk * dv;
    ScanArgs<T> p;
    p.len = len;
    // dq_t = S_t g_t: the state transposed, S^T [Dv,Dk] += v_t k_t^T, read out with g_t.
    p.ds = dv, p.dw = dk;
    p.key = vb, p.ldk = dv, p.val = kb, p.ldv = dk, p.qry = gb, p.ldq = dv;
    p.out = dq.data<T>() + b * len * dk, p.ldo = dk;
    if (s0.defined()) p.init = s0.data<T>() + b * dk * dv, p.init_rs = 1, p.init_cs = dv;
    scans.push_back(p);
    // dv_t = U_t^T k_t: U [Dk,Dv] += q_t g_t^T from the last token back; ds0 = U_0.
    p = ScanArgs<T>{};
    p.len = len, p.reverse = true;
    p.ds = dk, p.dw = dv;
    p.key = qb, p.ldk = dk, p.val = gb, p.ldv = dv, p.qry = kb, p.ldq = dk;
    p.out = dv_.data<T>() + b * len * dv, p.ldo = dv;
    p.init = dsfb, p.init_rs = dv, p.init_cs = 1;
    if (ds0.defined()) p.fin = ds0.data<T>() + b * dk * dv, p.fin_rs = dv, p.fin_cs = 1;
    scans.push_back(p);
    // dk_t = U_t v_t: U^T [Dv,Dk] += g_t q_t^T from the last token back.
    p = ScanArgs<T>{};
    p.len = len, p.reverse = true;
    p.ds = dv, p.dw = dk;
    p.key = gb, p.ldk = dv, p.val = qb, p.ldv = dk, p.qry = vb, p.ldq = dv;
    p.out = dk_.data<T>() + b * len * dk, p.ldo = dk;
    p.init = dsfb, p.init_rs = 1, p.init_cs = dv;
    scans.push_back(p);
  }
  run_scans(scans);
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

template <class T>
struct Chunks {
  int64_t n, len, dk, dv, c, nc;  // sequences, tokens, sizes, chunk length, number of chunks
  int64_t rows(int64_t i) const { return std::min(c, len - i * c); }
  // The team size of every region: one thread for small calls.
  int threads() const { return n * len * dk * dv > kParallelMinWork ? omp_get_max_threads() : 1; }
};

// states[b, i] = S at the start of chunk i (s0 + sum of earlier chunks' K^T V), and s_final when
// sf is given. The per-chunk products run in parallel; the prefix sum is sequential in i per
// state row, so every state is bitwise fixed.
template <class T>
void chunk_states(const Chunks<T>& ch, const T* k, const T* v, const T* s0, T* states, T* sf) {
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc, rows = ch.n * ch.dk;
#pragma omp parallel num_threads(ch.threads())
  {
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c;
      gemm(true, false, ch.dk, ch.dv, ch.rows(i), T(1), k + t0 * ch.dk, ch.dk, v + t0 * ch.dv,
           ch.dv, T(0), states + u * sz, ch.dv);
    }
    std::vector<T> run_row(ch.dv);  // this thread's running sum of one state row
    T* run = run_row.data();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = r / ch.dk, a = r % ch.dk;
      T* base = states + b * ch.nc * sz + a * ch.dv;
      for (int64_t x = 0; x < ch.dv; ++x) run[x] = s0 ? s0[b * sz + a * ch.dv + x] : T(0);
      for (int64_t i = 0; i < ch.nc; ++i) {
        T* row = base + i * sz;
#pragma omp simd
        for (int64_t x = 0; x < ch.dv; ++x) {
          const T kv = row[x];
          row[x] = run[x];
          run[x] += kv;
        }
      }
      if (sf)
        for (int64_t x = 0; x < ch.dv; ++x) sf[b * sz + a * ch.dv + x] = run[x];
    }
  }
}

// Zeroes the strictly upper triangle of a rows x rows block (row stride ld): causal masking.
template <class T>
void mask_upper(T* a, int64_t rows, int64_t ld) {
  for (int64_t i = 0; i < rows; ++i) std::fill(a + i * ld + i + 1, a + i * ld + rows, T(0));
}

template <class T>
Chunks<T> chunks_of(const Tensor& q, const Tensor& v, int64_t chunk) {
  Chunks<T> ch;
  ch.n = q.size(0), ch.len = q.size(1), ch.dk = q.size(2), ch.dv = v.size(2);
  ch.c = std::max<int64_t>(1, std::min(chunk, ch.len));
  ch.nc = (ch.len + ch.c - 1) / ch.c;
  return ch;
}

template <class T>
void chunked_forward_impl(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& s0,
                          int64_t chunk, const Tensor& out_, const Tensor& sf) {
  const Chunks<T> ch = chunks_of<T>(q_, v_, chunk);
  const T* q = q_.data<T>();
  const T* k = k_.data<T>();
  const T* v = v_.data<T>();
  T* out = out_.data<T>();
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc;
  Tensor states_t = Tensor::empty({std::max<int64_t>(1, units * sz)}, dtype_of<T>);
  T* states = states_t.data<T>();
  chunk_states(ch, k, v, s0.defined() ? s0.data<T>() : nullptr, states, sf.data<T>());
  const int threads = ch.threads();
  Tensor scratch_t = Tensor::empty({threads, ch.c * ch.c}, dtype_of<T>);
  T* scratch = scratch_t.data<T>();
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
      T* a = scratch + omp_get_thread_num() * ch.c * ch.c;
      gemm(false, false, m, ch.dv, ch.dk, T(1), qc, ch.dk, states + u * sz, ch.dv, T(0), oc, ch.dv);
      gemm(false, true, m, m, ch.dk, T(1), qc, ch.dk, kc, ch.dk, T(0), a, ch.c);
      mask_upper(a, m, ch.c);
      gemm(false, false, m, ch.dv, m, T(1), a, ch.c, vc, ch.dv, T(1), oc, ch.dv);
    }
  }
}

template <class T>
void chunked_backward_impl(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& s0,
                           const Tensor& g_, const Tensor& dsf_, int64_t chunk, const Tensor& dq_,
                           const Tensor& dk_, const Tensor& dv_, const Tensor& ds0) {
  const Chunks<T> ch = chunks_of<T>(q_, v_, chunk);
  const T* q = q_.data<T>();
  const T* k = k_.data<T>();
  const T* v = v_.data<T>();
  const T* g = g_.data<T>();
  const T* dsf = dsf_.data<T>();
  T* dq = dq_.data<T>();
  T* dk = dk_.data<T>();
  T* dv = dv_.data<T>();
  const int64_t sz = ch.dk * ch.dv, units = ch.n * ch.nc, rows = ch.n * ch.dk;
  Tensor states_t = Tensor::empty({std::max<int64_t>(1, 2 * units * sz)}, dtype_of<T>);
  T* states = states_t.data<T>();    // S_c, chunk starts
  T* dstates = states + units * sz;  // dL/dS_{c+1}, chunk ends
  chunk_states(ch, k, v, s0.defined() ? s0.data<T>() : nullptr, states, static_cast<T*>(nullptr));
  const int threads = ch.threads();
  Tensor scratch_t = Tensor::empty({threads, 2 * ch.c * ch.c}, dtype_of<T>);
  T* scratch = scratch_t.data<T>();
  T* ds0p = ds0.defined() ? ds0.data<T>() : nullptr;
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);
    // Q_c^T G_c per chunk, then a reverse exclusive prefix sum from dS_final.
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / ch.nc, i = u % ch.nc, t0 = b * ch.len + i * ch.c;
      gemm(true, false, ch.dk, ch.dv, ch.rows(i), T(1), q + t0 * ch.dk, ch.dk, g + t0 * ch.dv,
           ch.dv, T(0), dstates + u * sz, ch.dv);
    }
    std::vector<T> run_row(ch.dv);  // this thread's running sum of one state row
    T* run = run_row.data();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = r / ch.dk, a = r % ch.dk;
      T* base = dstates + b * ch.nc * sz + a * ch.dv;
      for (int64_t x = 0; x < ch.dv; ++x) run[x] = dsf[b * sz + a * ch.dv + x];
      for (int64_t i = ch.nc - 1; i >= 0; --i) {
        T* row = base + i * sz;
#pragma omp simd
        for (int64_t x = 0; x < ch.dv; ++x) {
          const T qg = row[x];
          row[x] = run[x];
          run[x] += qg;
        }
      }
      if (ds0p)
        for (int64_t x = 0; x < ch.dv; ++x) ds0p[b * sz + a * ch.dv + x] = run[x];
    }
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
      T* a = scratch + omp_get_thread_num() * 2 * ch.c * ch.c;  // tril(Q K^T)
      T* da = a + ch.c * ch.c;                                  // tril(G V^T)
      gemm(false, true, m, m, nk, T(1), qc, nk, kc, nk, T(0), a, ld);
      mask_upper(a, m, ld);
      gemm(false, true, m, m, nv, T(1), gc, nv, vc, nv, T(0), da, ld);
      mask_upper(da, m, ld);
      T* dqc = dq + t0 * nk;
      gemm(false, true, m, nk, nv, T(1), gc, nv, s, nv, T(0), dqc, nk);
      gemm(false, false, m, nk, m, T(1), da, ld, kc, nk, T(1), dqc, nk);
      T* dkc = dk + t0 * nk;
      gemm(true, false, m, nk, m, T(1), da, ld, qc, nk, T(0), dkc, nk);
      gemm(false, true, m, nk, nv, T(1), vc, nv, ds, nv, T(1), dkc, nk);
      T* dvc = dv + t0 * nv;
      gemm(true, false, m, nv, m, T(1), a, ld, gc, nv, T(0), dvc, nv);
      gemm(false, false, m, nv, nk, T(1), kc, nk, ds, nv, T(1), dvc, nv);
    }
  }
}

}  // namespace

void linear_attention_recurrent_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const Tensor& s0, const Tensor& out,
                                        const Tensor& s_final) {
  RILL_DISPATCH_FLOAT(q.dtype(), "linear_attention", T,
                      recurrent_forward_impl<T>(q, k, v, s0, out, s_final));
}

void linear_attention_recurrent_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const Tensor& s0, const Tensor& dout,
                                         const Tensor& ds_final, const Tensor& dq, const Tensor& dk,
                                         const Tensor& dv, const Tensor& ds0) {
  RILL_DISPATCH_FLOAT(q.dtype(), "linear_attention", T,
                      recurrent_backward_impl<T>(q, k, v, s0, dout, ds_final, dq, dk, dv, ds0));
}

void linear_attention_chunked_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const Tensor& s0, int64_t chunk, const Tensor& out,
                                      const Tensor& s_final) {
  RILL_DISPATCH_FLOAT(q.dtype(), "linear_attention", T,
                      chunked_forward_impl<T>(q, k, v, s0, chunk, out, s_final));
}

void linear_attention_chunked_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const Tensor& s0, const Tensor& dout, const Tensor& ds_final,
                                       int64_t chunk, const Tensor& dq, const Tensor& dk,
                                       const Tensor& dv, const Tensor& ds0) {
  RILL_DISPATCH_FLOAT(
      q.dtype(), "linear_attention", T,
      chunked_backward_impl<T>(q, k, v, s0, dout, ds_final, chunk, dq, dk, dv, ds0));
}

}  // namespace rill::cpu
