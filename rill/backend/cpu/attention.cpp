// Fused attention (FlashAttention-2 on the CPU) and rotary kernels.
//
// Shapes: B batch, H heads (BH = B * H), Tq queries, Tk keys, D query/key head dim, Dv value
// head dim, NB buckets. A "tile" is kTile queries or keys.
//
// Memory: forward and backward use O(B*H*(Tq+Tk)*(D+Dv)) bytes: padded (and, for the operands
// that need it, transposed) copies of q, k, v, dout, the per-row logsumexp and D_i, per-thread
// tile buffers of kTile x kTile (a score row of Tk on the decode path), per-head bias tables of
// Tq + Tk, and for rel_bias per-(b, h, key tile) partial tables of NB values. No buffer grows
// with Tq * Tk (tests/test_attention.cpp checks the peak at T = 4096).
//
// Forward, for each (b, h, query tile) and each key tile it can see: S = (scale q) k^T, plus
// bias, masked; online softmax (running max m and sum l, the output accumulator rescaled when m
// grows); O += P v. It stores O / l and lse = m + log l. With at most kRowPathMaxQueries queries
// (decode) it goes row by row instead, reading k and v in place. Backward recomputes
// P = exp(S - lse) tile by tile: pass 1 over query tiles gives dq = scale * sum_j dS_ij k_j with
// dS = P * (dO v^T - D_i), D_i = rowsum(dO_i * O_i); pass 2 over key tiles works on the
// transposed tile (keys as rows) and gives dk = sum_i dS_ij (scale q_i), dv = sum_i P_ij dO_i and
// per-(b, h, key tile) partial sums of dS per bias bucket, added in a fixed order at the end.
// Each output row belongs to exactly one task, so there are no races and no atomics, and every
// sum is taken in an order that does not depend on the thread count.
//
// Every tile function is built for AVX-512 and for the x86-64-v3 baseline and picked at run time;
// RILL_ATTENTION_ISA=baseline forces the baseline build (for tests and comparisons).
#include "rill/backend/cpu/attention.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

namespace rill::cpu {

namespace {

constexpr int64_t kTile = 64;  // queries and keys per tile: 3 tile buffers of 16 KB fit in L1/L2
// Up to this many queries the forward works row by row, without packing (see forward_row).
constexpr int64_t kRowPathMaxQueries = 4;

// The instruction set a tile function is built for: its vector width and the rows of the
// micro-kernel's register block (Rows x 128 bytes of C in 2 * Rows zmm or 4 * Rows ymm registers,
// so 16 of AVX-512's 32 registers, 8 of AVX2's 16).
template <int Bytes, int Rows>
struct Isa {
  static constexpr int kBytes = Bytes, kRows = Rows;
};
using Avx512 = Isa<64, 8>;  // x86-64-v4
using Avx2 = Isa<32, 2>;    // the x86-64-v3 baseline

template <class T, int Bytes>
struct Simd {
  typedef T V __attribute__((vector_size(Bytes)));
};
template <class T, int Bytes>
using Vec = typename Simd<T, Bytes>::V;

// The micro-kernel's column block is 128 bytes, whatever the ISA; every matrix-product N dim
// (keys, D, Dv) is padded to it, so both ISAs see one data layout.
constexpr int64_t kBlockBytes = 128;
template <class T>
constexpr int64_t kNr = kBlockBytes / sizeof(T);

constexpr int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Vectors never cross a call boundary here (everything below is inlined), so GCC's note that
// a 64-byte vector return changes the ABI without AVX-512 does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

template <class T, int Bytes>
[[gnu::always_inline]] inline Vec<T, Bytes> load(const T* p) {
  Vec<T, Bytes> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T, int Bytes>
[[gnu::always_inline]] inline void store(T* p, const Vec<T, Bytes>& v) {
  std::memcpy(p, &v, sizeof v);
}

// C (m x n) = A (m x k) B (k x n), or C += A B when Acc; row-major with leading dims lda, ldb,
// ldc. Needs m % I::kRows == 0 and n % kNr<T> == 0 (callers pad). A kRows x kNr block of C stays
// in registers for the whole k loop; each step loads one row of B and broadcasts kRows of A.
template <class T, bool Acc, class I>
[[gnu::always_inline]] inline void mm(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                                      const T* b, int64_t ldb, T* c, int64_t ldc) {
  constexpr int B = I::kBytes, R = I::kRows, L = B / sizeof(T), NV = kBlockBytes / B;
  using V = Vec<T, B>;
  for (int64_t i = 0; i < m; i += R)
    for (int64_t j = 0; j < n; j += NV * L) {
      V x[R][NV];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v)
          x[r][v] = Acc ? load<T, B>(c + (i + r) * ldc + j + v * L) : V{};
      const T* bp = b + j;
      for (int64_t p = 0; p < k; ++p, bp += ldb) {
        V bv[NV];
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) bv[v] = load<T, B>(bp + v * L);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const T ar = a[(i + r) * lda + p];
#pragma GCC unroll 16
          for (int v = 0; v < NV; ++v) x[r][v] += ar * bv[v];
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) store<T, B>(c + (i + r) * ldc + j + v * L, x[r][v]);
    }
}

// The sum of a vector's lanes: halves added until one lane is left.
template <int Off, class V, size_t... K>
[[gnu::always_inline]] inline auto lanes(const V& v, std::index_sequence<K...>) {
  return __builtin_shufflevector(v, v, (Off + K)...);
}
template <class T, int Bytes>
[[gnu::always_inline]] inline T hsum(const Vec<T, Bytes>& v) {
  if constexpr (Bytes == sizeof(T)) {
    return v[0];
  } else {
    constexpr int H = Bytes / sizeof(T) / 2;
    const Vec<T, Bytes / 2> half =
        lanes<0>(v, std::make_index_sequence<H>()) + lanes<H>(v, std::make_index_sequence<H>());
    return hsum<T, Bytes / 2>(half);
  }
}

// The maximum of a kTile row, in vector registers (GCC leaves a max reduction scalar here).
template <class T, class I>
[[gnu::always_inline]] inline T row_max(const T* x) {
  constexpr int B = I::kBytes, L = B / sizeof(T);
  Vec<T, B> m = load<T, B>(x);
  for (int64_t c = L; c < kTile; c += L) {
    const Vec<T, B> v = load<T, B>(x + c);
    m = v > m ? v : m;
  }
  T r = m[0];
  for (int l = 1; l < L; ++l) r = m[l] > r ? m[l] : r;
  return r;
}

// Constants of fast_exp: the low clamp (exp of it is still a normal number), the rounding shift
// (adding it leaves round(x / ln 2) in the low mantissa bits), ln 2 in a high part with trailing
// zero bits (so n * hi is exact) and a low part, and the Taylor degree on |r| <= ln 2 / 2.
template <class T>
struct ExpParams;
template <>
struct ExpParams<float> {
  using Bits = uint32_t;
  static constexpr float kLow = -87.0f, kShift = 12582912.0f;  // 1.5 * 2^23
  static constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.428606765330187e-06f;
  static constexpr int kMantissa = 23, kBias = 127, kDegree = 7;
};
template <>
struct ExpParams<double> {
  using Bits = uint64_t;
  static constexpr double kLow = -708.0, kShift = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double kLn2Hi = 0.6931471803691238, kLn2Lo = 1.9082149292705877e-10;
  static constexpr int kMantissa = 52, kBias = 1023, kDegree = 13;
};

template <class T>
constexpr std::array<T, ExpParams<T>::kDegree + 1> taylor_coefficients() {
  std::array<T, ExpParams<T>::kDegree + 1> c{};
  double f = 1;
  for (int n = 0; n <= ExpParams<T>::kDegree; ++n) {
    if (n > 0) f /= n;
    c[n] = static_cast<T>(f);
  }
  return c;
}

// exp(x) for x <= 80 (every argument here is a logit minus a row maximum or logsumexp, so <= 0
// up to rounding), -inf (a masked logit: exactly 0) or NaN (propagates). std::exp is a libm call
// that GCC will not vectorise without -ffast-math; this inlines into `omp simd` loops. Results
// below exp(kLow) flush to 0.
template <class T>
[[gnu::always_inline]] inline T fast_exp(T x) {
  using P = ExpParams<T>;
  using Bits = typename P::Bits;
  constexpr auto kCoef = taylor_coefficients<T>();
  // The clamp and the flush are bit masks, not ternaries: GCC turns such a select into a branch
  // in the baseline build, and the branch stops vectorisation.
  const Bits keep = Bits(0) - static_cast<Bits>(!(x < P::kLow));  // all ones, or 0 to flush
  const T xc =
      std::bit_cast<T>((std::bit_cast<Bits>(x) & keep) | (std::bit_cast<Bits>(P::kLow) & ~keep));
  const T t = xc * T(1.4426950408889634) + P::kShift;
  const T n = t - P::kShift;
  const T r = (xc - n * P::kLn2Hi) - n * P::kLn2Lo;
  T poly = kCoef[P::kDegree];
  for (int d = P::kDegree - 1; d >= 0; --d) poly = poly * r + kCoef[d];
  // 2^n from the integer in t's low bits; unsigned arithmetic keeps a NaN's garbage defined.
  const Bits e = std::bit_cast<Bits>(t) - std::bit_cast<Bits>(P::kShift) + Bits(P::kBias);
  const T y = poly * std::bit_cast<T>(static_cast<Bits>(e << P::kMantissa));
  return std::bit_cast<T>(std::bit_cast<Bits>(y) & keep);
}

// The problem's sizes, padded sizes and options.
struct Geometry {
  int64_t BH, H, Tq, Tk, D, Dv;
  int64_t Tqp, Tkp, Dp, Dvp;  // Tq, Tk padded to kTile; D, Dv padded to kNr
  int64_t nqt, nkt;           // query and key tiles per (b, h)
  bool causal;
  int64_t q_offset, window;
  double scale;

  // Keys visible to query i: [key_lo(i), key_hi(i)); both grow with i.
  int64_t key_lo(int64_t i) const {
    return window > 0 ? std::clamp(i + q_offset - window + 1, int64_t(0), Tk) : 0;
  }
  int64_t key_hi(int64_t i) const {
    return causal ? std::clamp(i + q_offset + 1, int64_t(0), Tk) : Tk;
  }
  // Queries that see key j: [query_lo(j), query_hi(j)); both grow with j.
  int64_t query_lo(int64_t j) const {
    return causal ? std::clamp(j - q_offset, int64_t(0), Tq) : 0;
  }
  int64_t query_hi(int64_t j) const {
    return window > 0 ? std::clamp(j - q_offset + window, int64_t(0), Tq) : Tq;
  }
};

template <class T>
Geometry geometry(const Tensor& q, const Tensor& v, const AttentionOptions& opt) {
  Geometry g;
  g.BH = q.size(0) * q.size(1), g.H = q.size(1);
  g.Tq = q.size(2), g.Tk = v.size(2), g.D = q.size(3), g.Dv = v.size(3);
  g.Tqp = round_up(g.Tq, kTile), g.Tkp = round_up(g.Tk, kTile);
  g.Dp = round_up(g.D, kNr<T>), g.Dvp = round_up(g.Dv, kNr<T>);
  g.nqt = g.Tqp / kTile, g.nkt = g.Tkp / kTile;
  g.causal = opt.causal, g.q_offset = opt.q_offset, g.window = opt.window, g.scale = opt.scale;
  return g;
}

// Elements between consecutive (b, h) slices of t [B, H, T, C] (contiguous, or a KV cache's
// view of its growing buffer: packed rows, one stride between slices; the op checks).
int64_t bh_stride(const Tensor& t) {
  if (t.size(1) > 1) return t.stride(1);
  return t.size(0) > 1 ? t.stride(0) : t.size(2) * t.size(3);
}

// dst [BH, Tp, Cp] = scale * src [BH, Tn, C], zero in the padding. src's (b, h) slices are
// src_bh elements apart (Tn * C when contiguous), each Tn packed rows of C.
template <class T>
void pack_rows(const T* src, int64_t BH, int64_t Tn, int64_t C, int64_t Tp, int64_t Cp, T scale,
               T* dst, int64_t src_bh) {
#pragma omp parallel for schedule(static) if (BH * Tp * Cp > 65536)
  for (int64_t row = 0; row < BH * Tp; ++row) {
    const int64_t bh = row / Tp, t = row % Tp;
    T* d = dst + row * Cp;
    const int64_t n = t < Tn ? C : 0;
    const T* s = src + bh * src_bh + t * C;
    for (int64_t c = 0; c < n; ++c) d[c] = scale * s[c];
    std::fill(d + n, d + Cp, T(0));
  }
}

// dst [BH, Tp / kTile, C, kTile] = scale * src [BH, Tn, C] (laid out as for pack_rows), each
// tile of kTile rows transposed and stored whole, zero in the padding. The tile-major order
// keeps a tile's C x kTile block contiguous: with one long [C, Tp] row per c, the micro-kernel
// would step through memory by Tp elements, a power-of-two stride that maps every row to the
// same L1 sets.
template <class T>
void pack_tiles_transposed(const T* src, int64_t BH, int64_t Tn, int64_t C, int64_t Tp, T scale,
                           T* dst, int64_t src_bh) {
  const int64_t tiles = Tp / kTile;
#pragma omp parallel for schedule(static) if (BH * C * Tp > 65536)
  for (int64_t bt = 0; bt < BH * tiles; ++bt) {
    const int64_t bh = bt / tiles, t0 = bt % tiles * kTile, n = std::min(kTile, Tn - t0);
    T* d = dst + bt * C * kTile;
    const T* s = src + bh * src_bh + t0 * C;
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t r = 0; r < n; ++r) d[c * kTile + r] = scale * s[r * C + c];
      std::fill(d + c * kTile + n, d + (c + 1) * kTile, T(0));
    }
  }
}

// bucket[u] for u = i - j + Tk - 1 in [0, Tq + Tk - 1): the T5 bucket of query i and key j.
std::vector<int64_t> bucket_table(const Geometry& g, const AttentionOptions& opt) {
  std::vector<int64_t> b(std::max<int64_t>(g.Tq + g.Tk - 1, 0));
  for (int64_t u = 0; u < static_cast<int64_t>(b.size()); ++u)
    b[u] = t5_bucket(u - (g.Tk - 1) + g.q_offset, !opt.causal, opt.num_buckets, opt.max_distance);
  return b;
}

// The bias of each (h, i - j), in two orders so that the tile loops read it contiguously:
// by_key[h][j - i + Tq - 1] (rows of queries, columns of keys) and by_query[h][i - j + Tk - 1].
template <class T>
void bias_tables(const Geometry& g, const T* rel_bias, const std::vector<int64_t>& bucket,
                 std::vector<T>& by_key, std::vector<T>& by_query) {
  const int64_t n = static_cast<int64_t>(bucket.size());
  by_key.assign(g.H * n, T(0));
  by_query.assign(g.H * n, T(0));
  for (int64_t h = 0; h < g.H; ++h)
    for (int64_t u = 0; u < n; ++u) {
      const T b = rel_bias[bucket[u] * g.H + h];
      by_query[h * n + u] = b;
      by_key[h * n + (n - 1 - u)] = b;
    }
}

// Adds the bias and masks one row of a query-major tile: row i, keys j0 .. j0 + kTile.
template <class T>
[[gnu::always_inline]] inline void bias_mask_query_row(const Geometry& g, T* s, int64_t i,
                                                       int64_t j0, const T* by_key) {
  const int64_t nk = std::min(kTile, g.Tk - j0);
  if (by_key) {
    const T* b = by_key + (j0 - i + g.Tq - 1);
#pragma omp simd
    for (int64_t jj = 0; jj < nk; ++jj) s[jj] += b[jj];
  }
  const int64_t lo = std::clamp(g.key_lo(i) - j0, int64_t(0), kTile);
  const int64_t hi = std::clamp(g.key_hi(i) - j0, lo, kTile);
  for (int64_t jj = 0; jj < lo; ++jj) s[jj] = -std::numeric_limits<T>::infinity();
  for (int64_t jj = hi; jj < kTile; ++jj) s[jj] = -std::numeric_limits<T>::infinity();
}

// Per-thread tile buffers, allocated once per kernel call and reused by every task of a thread.
template <class T>
struct Scratch {
  std::vector<T> a, b, s, dp, acc, acc2, row1, row2;
  std::vector<double> diag;
};

template <class T>
struct ForwardArgs {
  Geometry g;
  const T* q;  // [BH, Tq, D]
  const T* k;  // [BH, Tk, D], (b, h) slices k_bh elements apart
  const T* v;  // [BH, Tk, Dv], (b, h) slices v_bh elements apart
  int64_t k_bh, v_bh;
  const T* kt;      // [BH, Tkp / kTile, D, kTile] (tiled path only)
  const T* vp;      // [BH, Tkp, Dvp] (tiled path only)
  const T* by_key;  // [H, Tq + Tk - 1] or null
  T* out;           // [BH, Tq, Dv]
  T* lse;           // [BH, Tq]
};

// The forward of one query row straight from k and v, for a few queries (decode): packing k and
// v into tiles would move as many bytes as the whole computation reads, and a tile of kTile
// queries would be mostly padding. Dot products over the visible keys, four keys at a time, a
// softmax over them (scores in a per-thread buffer of Tk), then p v with the output row in
// registers; the same lse convention as the tiled path.
template <class T, class I>
[[gnu::always_inline]] inline void forward_row(const ForwardArgs<T>& f, int64_t bh, int64_t i,
                                               Scratch<T>& w) {
  constexpr int B = I::kBytes;
  constexpr int64_t L = B / sizeof(T);
  using V = Vec<T, B>;
  const Geometry& g = f.g;
  const int64_t row = bh * g.Tq + i, D = g.D, Dv = g.Dv;
  T* dst = f.out + row * Dv;
  const int64_t lo = g.key_lo(i), n = g.key_hi(i) - lo;
  if (n <= 0) {
    std::fill(dst, dst + Dv, T(0));
    f.lse[row] = std::numeric_limits<T>::infinity();
    return;
  }
  if (static_cast<int64_t>(w.s.size()) < n) w.s.resize(n);
  T* qs = w.a.data();  // [D], scaled as in the tiled path
  T* s = w.s.data();   // [n]: scores, then probabilities
  const T scale = static_cast<T>(g.scale);
  for (int64_t c = 0; c < D; ++c) qs[c] = scale * f.q[row * D + c];

  const T* k = f.k + bh * f.k_bh + lo * D;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const T* k0 = k + j * D;
    const T *k1 = k0 + D, *k2 = k1 + D, *k3 = k2 + D;
    V a0{}, a1{}, a2{}, a3{};
    int64_t c = 0;
    for (; c + L <= D; c += L) {
      const V qv = load<T, B>(qs + c);
      a0 += qv * load<T, B>(k0 + c), a1 += qv * load<T, B>(k1 + c);
      a2 += qv * load<T, B>(k2 + c), a3 += qv * load<T, B>(k3 + c);
    }
    T d0 = hsum<T, B>(a0), d1 = hsum<T, B>(a1), d2 = hsum<T, B>(a2), d3 = hsum<T, B>(a3);
    for (; c < D; ++c)
      d0 += qs[c] * k0[c], d1 += qs[c] * k1[c], d2 += qs[c] * k2[c], d3 += qs[c] * k3[c];
    s[j] = d0, s[j + 1] = d1, s[j + 2] = d2, s[j + 3] = d3;
  }
  for (; j < n; ++j) {
    const T* kj = k + j * D;
    V a{};
    int64_t c = 0;
    for (; c + L <= D; c += L) a += load<T, B>(qs + c) * load<T, B>(kj + c);
    T d = hsum<T, B>(a);
    for (; c < D; ++c) d += qs[c] * kj[c];
    s[j] = d;
  }
  if (f.by_key) {
    const T* b = f.by_key + (bh % g.H) * (g.Tq + g.Tk - 1) + (lo - i + g.Tq - 1);
#pragma omp simd
    for (int64_t jj = 0; jj < n; ++jj) s[jj] += b[jj];
  }
  T m = s[0];
  for (int64_t jj = 1; jj < n; ++jj) m = s[jj] > m ? s[jj] : m;
  T l = 0;
#pragma omp simd reduction(+ : l)
  for (int64_t jj = 0; jj < n; ++jj) {
    s[jj] = fast_exp(s[jj] - m);
    l += s[jj];
  }

  // out = (p v) / l, a block of output columns at a time held in registers across all keys.
  const T* v = f.v + bh * f.v_bh + lo * Dv;
  const T inv = T(1) / l;
  int64_t c0 = 0;
  for (; c0 + 4 * L <= Dv; c0 += 4 * L) {
    V o0{}, o1{}, o2{}, o3{};
    for (int64_t jj = 0; jj < n; ++jj) {
      const T p = s[jj];
      const T* vj = v + jj * Dv + c0;
      o0 += p * load<T, B>(vj), o1 += p * load<T, B>(vj + L);
      o2 += p * load<T, B>(vj + 2 * L), o3 += p * load<T, B>(vj + 3 * L);
    }
    store<T, B>(dst + c0, o0 * inv), store<T, B>(dst + c0 + L, o1 * inv);
    store<T, B>(dst + c0 + 2 * L, o2 * inv), store<T, B>(dst + c0 + 3 * L, o3 * inv);
  }
  for (; c0 + L <= Dv; c0 += L) {
    V o0{};
    for (int64_t jj = 0; jj < n; ++jj) o0 += s[jj] * load<T, B>(v + jj * Dv + c0);
    store<T, B>(dst + c0, o0 * inv);
  }
  for (; c0 < Dv; ++c0) {
    T acc = 0;
    for (int64_t jj = 0; jj < n; ++jj) acc += s[jj] * v[jj * Dv + c0];
    dst[c0] = acc * inv;
  }
  f.lse[row] = m + std::log(l);
}

template <class T, class I>
[[gnu::always_inline]] inline void forward_tile(const ForwardArgs<T>& f, int64_t bh, int64_t it,
                                                Scratch<T>& w) {
  const Geometry& g = f.g;
  const int64_t i0 = it * kTile, nq = std::min(kTile, g.Tq - i0);
  // Rows computed: the tile's queries rounded up to the register block (decode computes 1 row
  // of kRows, not of kTile).
  const int64_t mq = round_up(nq, I::kRows);
  T* qs = w.a.data();   // [mq, D], scaled; padding rows zero
  T* s = w.s.data();    // [kTile, kTile]: logits, then probabilities
  T* o = w.acc.data();  // [kTile, Dvp]
  T* m = w.row1.data();
  T* l = w.row2.data();
  const T scale = static_cast<T>(g.scale);
  for (int64_t r = 0; r < nq; ++r) {
    const T* src = f.q + (bh * g.Tq + i0 + r) * g.D;
    for (int64_t c = 0; c < g.D; ++c) qs[r * g.D + c] = scale * src[c];
  }
  std::fill(qs + nq * g.D, qs + mq * g.D, T(0));
  std::fill(o, o + mq * g.Dvp, T(0));
  std::fill(m, m + kTile, -std::numeric_limits<T>::infinity());
  std::fill(l, l + kTile, T(0));
  const T* by_key = f.by_key ? f.by_key + (bh % g.H) * (g.Tq + g.Tk - 1) : nullptr;

  // Fully masked key tiles are never visited: [jb, je) covers every key some row here can see.
  const int64_t jb = g.key_lo(i0), je = g.key_hi(i0 + nq - 1);
  for (int64_t j0 = jb / kTile * kTile; j0 < je; j0 += kTile) {
    mm<T, false, I>(mq, kTile, g.D, qs, g.D, f.kt + (bh * g.Tkp + j0) * g.D, kTile, s, kTile);
    for (int64_t r = 0; r < nq; ++r) {
      T* sr = s + r * kTile;
      bias_mask_query_row(g, sr, i0 + r, j0, by_key);
      const T m_new = std::max(m[r], row_max<T, I>(sr));
      // While a row has seen no visible key its max is -inf; 0 keeps exp(-inf - 0) = 0.
      const T m_use = m_new == -std::numeric_limits<T>::infinity() ? T(0) : m_new;
      const T alpha = fast_exp(m[r] - m_use);
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t jj = 0; jj < kTile; ++jj) {
        const T p = fast_exp(sr[jj] - m_use);
        sr[jj] = p;
        sum += p;
      }
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
      if (alpha != T(1)) {
        T* orow = o + r * g.Dvp;
#pragma omp simd
        for (int64_t c = 0; c < g.Dvp; ++c) orow[c] *= alpha;
      }
    }
    std::fill(s + nq * kTile, s + mq * kTile, T(0));  // padding rows add nothing
    mm<T, true, I>(mq, g.Dvp, kTile, s, kTile, f.vp + (bh * g.Tkp + j0) * g.Dvp, g.Dvp, o, g.Dvp);
  }
  for (int64_t r = 0; r < nq; ++r) {
    T* dst = f.out + (bh * g.Tq + i0 + r) * g.Dv;
    const T* orow = o + r * g.Dvp;
    if (l[r] == T(0)) {  // no visible key: output 0, and lse +inf makes every P 0 in backward
      std::fill(dst, dst + g.Dv, T(0));
      f.lse[bh * g.Tq + i0 + r] = std::numeric_limits<T>::infinity();
      continue;
    }
    const T inv = T(1) / l[r];
#pragma omp simd
    for (int64_t c = 0; c < g.Dv; ++c) dst[c] = orow[c] * inv;
    f.lse[bh * g.Tq + i0 + r] = m[r] + std::log(l[r]);
  }
}

template <class T>
struct BackwardArgs {
  Geometry g;
  const T* q;         // [BH, Tq, D]
  const T* dout;      // [BH, Tq, Dv]
  const T* lse;       // [BH, Tq]
  const T* delta;     // [BH, Tq]: D_i
  const T* by_key;    // [H, Tq + Tk - 1] or null
  const T* by_query;  // [H, Tq + Tk - 1] or null
  // Pass 1 (query tiles).
  const T* kt;  // [BH, Tkp / kTile, D, kTile]
  const T* vt;  // [BH, Tkp / kTile, Dv, kTile]
  const T* kp;  // [BH, Tkp, Dp]
  T* dq;        // [BH, Tq, D]
  // Pass 2 (key tiles).
  const T* vp;            // [BH, Tkp, Dvp]
  const T* qst;           // [BH, Tqp / kTile, D, kTile], scaled
  const T* qsp;           // [BH, Tqp, Dp], scaled
  const T* dot;           // [BH, Tqp / kTile, Dv, kTile]
  const T* dop;           // [BH, Tqp, Dvp]
  T* dk;                  // [BH, Tk, D]
  T* dv;                  // [BH, Tk, Dv]
  const int64_t* bucket;  // [Tq + Tk - 1] or null when no bias gradient is wanted
  int64_t num_buckets;
  double* bias_partial;  // [BH, nkt, NB]
};

// Pass 1: dq for one query tile.
template <class T, class I>
[[gnu::always_inline]] inline void dq_tile(const BackwardArgs<T>& f, int64_t bh, int64_t it,
                                           Scratch<T>& w) {
  const Geometry& g = f.g;
  const int64_t i0 = it * kTile, nq = std::min(kTile, g.Tq - i0);
  const int64_t mq = round_up(nq, I::kRows);  // rows computed, as in forward_tile
  T* qs = w.a.data();                         // [mq, D]
  T* dO = w.b.data();                         // [mq, Dv]
  T* s = w.s.data();                          // [kTile, kTile]: logits, P, then dS
  T* dp = w.dp.data();                        // [kTile, kTile]
  T* acc = w.acc.data();                      // [kTile, Dp]
  T* lse = w.row1.data();
  T* delta = w.row2.data();
  const T scale = static_cast<T>(g.scale);
  for (int64_t r = 0; r < nq; ++r) {
    const int64_t row = bh * g.Tq + i0 + r;
    for (int64_t c = 0; c < g.D; ++c) qs[r * g.D + c] = scale * f.q[row * g.D + c];
    for (int64_t c = 0; c < g.Dv; ++c) dO[r * g.Dv + c] = f.dout[row * g.Dv + c];
    lse[r] = f.lse[row];
    delta[r] = f.delta[row];
  }
  // Padding rows: zero inputs and lse +inf, so their P and dS are 0.
  std::fill(qs + nq * g.D, qs + mq * g.D, T(0));
  std::fill(dO + nq * g.Dv, dO + mq * g.Dv, T(0));
  std::fill(lse + nq, lse + mq, std::numeric_limits<T>::infinity());
  std::fill(delta + nq, delta + mq, T(0));
  std::fill(acc, acc + mq * g.Dp, T(0));
  const T* by_key = f.by_key ? f.by_key + (bh % g.H) * (g.Tq + g.Tk - 1) : nullptr;

  const int64_t jb = g.key_lo(i0), je = g.key_hi(i0 + nq - 1);
  for (int64_t j0 = jb / kTile * kTile; j0 < je; j0 += kTile) {
    mm<T, false, I>(mq, kTile, g.D, qs, g.D, f.kt + (bh * g.Tkp + j0) * g.D, kTile, s, kTile);
    mm<T, false, I>(mq, kTile, g.Dv, dO, g.Dv, f.vt + (bh * g.Tkp + j0) * g.Dv, kTile, dp, kTile);
    for (int64_t r = 0; r < mq; ++r) {
      T* sr = s + r * kTile;
      const T* dpr = dp + r * kTile;
      if (r < nq) bias_mask_query_row(g, sr, i0 + r, j0, by_key);
      const T lr = lse[r], dr = delta[r];
#pragma omp simd
      for (int64_t jj = 0; jj < kTile; ++jj) sr[jj] = fast_exp(sr[jj] - lr) * (dpr[jj] - dr);
    }
    mm<T, true, I>(mq, g.Dp, kTile, s, kTile, f.kp + (bh * g.Tkp + j0) * g.Dp, g.Dp, acc, g.Dp);
  }
  for (int64_t r = 0; r < nq; ++r) {
    T* dst = f.dq + (bh * g.Tq + i0 + r) * g.D;
#pragma omp simd
    for (int64_t c = 0; c < g.D; ++c) dst[c] = scale * acc[r * g.Dp + c];
  }
}

// Pass 2: dk, dv and the bias partial sums for one key tile. The tile is transposed (keys as
// rows, queries as columns), so every product is again a plain row-major one.
template <class T, class I>
[[gnu::always_inline]] inline void dkv_tile(const BackwardArgs<T>& f, int64_t bh, int64_t kt,
                                            Scratch<T>& w) {
  const Geometry& g = f.g;
  const int64_t j0 = kt * kTile, nk = std::min(kTile, g.Tk - j0);
  const int64_t mk = round_up(nk, I::kRows);       // rows computed
  const T* kp = f.kp + (bh * g.Tkp + j0) * g.Dp;   // [kTile, Dp], padding rows zero
  const T* vp = f.vp + (bh * g.Tkp + j0) * g.Dvp;  // [kTile, Dvp]
  T* s = w.s.data();      // [kTile keys, kTile queries]: logits, P, then dS
  T* dp = w.dp.data();    // [kTile, kTile]
  T* dk = w.acc.data();   // [kTile, Dp]
  T* dv = w.acc2.data();  // [kTile, Dvp]
  T* lse = w.row1.data();
  T* delta = w.row2.data();
  double* diag = w.diag.data();  // dS summed per i - j: index i - (j - j0) + kTile - 1
  std::fill(dk, dk + mk * g.Dp, T(0));
  std::fill(dv, dv + mk * g.Dvp, T(0));
  if (f.bucket) std::fill(diag, diag + g.Tqp + kTile, 0.0);
  const int64_t n_bias = g.Tq + g.Tk - 1;
  const T* by_query = f.by_query ? f.by_query + (bh % g.H) * n_bias : nullptr;

  const int64_t ib = g.query_lo(j0), ie = g.query_hi(j0 + nk - 1);
  for (int64_t i0 = ib / kTile * kTile; i0 < ie; i0 += kTile) {
    const int64_t nq = std::min(kTile, g.Tq - i0);
    for (int64_t c = 0; c < kTile; ++c) {
      lse[c] = c < nq ? f.lse[bh * g.Tq + i0 + c] : std::numeric_limits<T>::infinity();
      delta[c] = c < nq ? f.delta[bh * g.Tq + i0 + c] : T(0);
    }
    mm<T, false, I>(mk, kTile, g.D, kp, g.Dp, f.qst + (bh * g.Tqp + i0) * g.D, kTile, s, kTile);
    mm<T, false, I>(mk, kTile, g.Dv, vp, g.Dvp, f.dot + (bh * g.Tqp + i0) * g.Dv, kTile, dp, kTile);
    for (int64_t r = 0; r < mk; ++r) {
      T* sr = s + r * kTile;
      const int64_t j = j0 + r;
      if (r < nk) {
        if (by_query) {
          const T* b = by_query + (i0 - j + g.Tk - 1);
#pragma omp simd
          for (int64_t c = 0; c < nq; ++c) sr[c] += b[c];
        }
        const int64_t lo = std::clamp(g.query_lo(j) - i0, int64_t(0), kTile);
        const int64_t hi = std::clamp(g.query_hi(j) - i0, lo, kTile);
        for (int64_t c = 0; c < lo; ++c) sr[c] = -std::numeric_limits<T>::infinity();
        for (int64_t c = hi; c < kTile; ++c) sr[c] = -std::numeric_limits<T>::infinity();
      } else {
        std::fill(sr, sr + kTile, -std::numeric_limits<T>::infinity());  // padding keys
      }
      // P^T in s for dv, dS^T in dp for dk.
      T* dpr = dp + r * kTile;
#pragma omp simd
      for (int64_t c = 0; c < kTile; ++c) {
        const T p = fast_exp(sr[c] - lse[c]);
        sr[c] = p;
        dpr[c] = p * (dpr[c] - delta[c]);
      }
    }
    mm<T, true, I>(mk, g.Dvp, kTile, s, kTile, f.dop + (bh * g.Tqp + i0) * g.Dvp, g.Dvp, dv, g.Dvp);
    mm<T, true, I>(mk, g.Dp, kTile, dp, kTile, f.qsp + (bh * g.Tqp + i0) * g.Dp, g.Dp, dk, g.Dp);
    if (f.bucket)
      for (int64_t r = 0; r < nk; ++r) {
        double* dg = diag + i0 - r + kTile - 1;
        const T* dsr = dp + r * kTile;
#pragma omp simd
        for (int64_t c = 0; c < kTile; ++c) dg[c] += dsr[c];
      }
  }
  for (int64_t r = 0; r < nk; ++r) {
    T* dkr = f.dk + (bh * g.Tk + j0 + r) * g.D;
    T* dvr = f.dv + (bh * g.Tk + j0 + r) * g.Dv;
    std::copy(dk + r * g.Dp, dk + r * g.Dp + g.D, dkr);
    std::copy(dv + r * g.Dvp, dv + r * g.Dvp + g.Dv, dvr);
  }
  if (f.bucket) {
    // Fold the per-diagonal sums into buckets, in diagonal order.
    double* part = f.bias_partial + (bh * g.nkt + kt) * f.num_buckets;
    std::fill(part, part + f.num_buckets, 0.0);
    for (int64_t d = 0; d < g.Tqp + kTile - 1; ++d) {
      const int64_t u = d - (kTile - 1) - j0 + g.Tk - 1;  // i - j + Tk - 1
      if (u >= 0 && u < n_bias) part[f.bucket[u]] += diag[d];
    }
  }
}

enum class Pass { forward, forward_row, dq, dkv };

template <class T, class I, Pass P, class Args>
[[gnu::always_inline]] inline void tile(const Args& f, int64_t bh, int64_t t, Scratch<T>& w) {
  if constexpr (P == Pass::forward)
    forward_tile<T, I>(f, bh, t, w);
  else if constexpr (P == Pass::forward_row)
    forward_row<T, I>(f, bh, t, w);
  else if constexpr (P == Pass::dq)
    dq_tile<T, I>(f, bh, t, w);
  else
    dkv_tile<T, I>(f, bh, t, w);
}

// Each tile function is built twice: for AVX-512 (whose omp simd loops then use 512-bit vectors
// as well) and for the x86-64-v3 baseline.
template <class T, Pass P, class Args>
__attribute__((target("arch=x86-64-v4,prefer-vector-width=512"))) void tile_avx512(const Args& f,
                                                                                   int64_t bh,
                                                                                   int64_t t,
                                                                                   Scratch<T>& w) {
  tile<T, Avx512, P>(f, bh, t, w);
}
template <class T, Pass P, class Args>
void tile_baseline(const Args& f, int64_t bh, int64_t t, Scratch<T>& w) {
  tile<T, Avx2, P>(f, bh, t, w);
}

// AVX-512 when the CPU has it (x86-64-v4's set), unless the environment variable
// RILL_ATTENTION_ISA=baseline asks for the x86-64-v3 build (the tests run both).
bool use_avx512() {
  static const bool hw = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vl");
  const char* env = std::getenv("RILL_ATTENTION_ISA");
  return hw && !(env && std::string_view(env) == "baseline");
}

template <class T, Pass P, class Args>
auto pick_tile() {
  return use_avx512() ? &tile_avx512<T, P, Args> : &tile_baseline<T, P, Args>;
}

// Below this many multiply-adds (dense Tq x Tk, unmasked) the kernels stay on one thread: a
// team's fork and join would cost more than the work.
constexpr double kParallelMinWork = 1 << 20;

// Runs task(index, scratch) for index in [0, n) on the OpenMP pool, each thread with its own
// scratch. Dynamic scheduling balances the causal tiles' unequal costs; the results never
// depend on which thread runs what.
template <class T, class Fn>
void run_tasks(int64_t n, const Geometry& g, bool with_diag, Fn&& task) {
  const double work = double(g.BH) * double(g.Tq) * double(g.Tk) * double(g.D + g.Dv);
#pragma omp parallel if (n > 1 && work > kParallelMinWork)
  {
    Scratch<T> w;
    const int64_t width = std::max(g.Dp, g.Dvp);
    w.a.resize(kTile * std::max(g.D, int64_t(1)));
    w.b.resize(kTile * std::max(g.Dv, int64_t(1)));
    w.s.resize(kTile * kTile);
    w.dp.resize(kTile * kTile);
    w.acc.resize(kTile * std::max(width, int64_t(1)));
    w.acc2.resize(kTile * std::max(width, int64_t(1)));
    w.row1.resize(kTile);
    w.row2.resize(kTile);
    if (with_diag) w.diag.resize(g.Tqp + kTile);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n; ++t) task(t, w);
  }
}

template <class T>
void forward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                  const AttentionOptions& opt, const Tensor& out, const Tensor& lse) {
  const Geometry g = geometry<T>(q, v, opt);
  std::vector<T> by_key, by_query;
  if (rel_bias.defined())
    bias_tables(g, rel_bias.data<T>(), bucket_table(g, opt), by_key, by_query);
  ForwardArgs<T> f{};
  f.g = g, f.q = q.data<T>(), f.k = k.data<T>(), f.v = v.data<T>();
  f.k_bh = bh_stride(k), f.v_bh = bh_stride(v);
  f.by_key = rel_bias.defined() ? by_key.data() : nullptr;
  f.out = out.data<T>(), f.lse = lse.data<T>();
  if (g.Tq <= kRowPathMaxQueries) {
    const auto fn = pick_tile<T, Pass::forward_row, ForwardArgs<T>>();
    run_tasks<T>(g.BH * g.Tq, g, false,
                 [&](int64_t t, Scratch<T>& w) { fn(f, t / g.Tq, t % g.Tq, w); });
    return;
  }
  Tensor kt = Tensor::empty({g.BH, g.nkt, g.D, kTile}, q.dtype());
  Tensor vp = Tensor::empty({g.BH, g.Tkp, g.Dvp}, q.dtype());
  pack_tiles_transposed(k.data<T>(), g.BH, g.Tk, g.D, g.Tkp, T(1), kt.data<T>(), f.k_bh);
  pack_rows(v.data<T>(), g.BH, g.Tk, g.Dv, g.Tkp, g.Dvp, T(1), vp.data<T>(), f.v_bh);
  f.kt = kt.data<T>(), f.vp = vp.data<T>();
  // Later query tiles see more keys under a causal mask: hand them out first.
  const auto fn = pick_tile<T, Pass::forward, ForwardArgs<T>>();
  run_tasks<T>(g.BH * g.nqt, g, false,
               [&](int64_t t, Scratch<T>& w) { fn(f, t / g.nqt, g.nqt - 1 - t % g.nqt, w); });
}

template <class T>
void backward_impl(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                   const Tensor& out, const Tensor& lse, const Tensor& dout,
                   const AttentionOptions& opt, const Tensor& dq, const Tensor& dk,
                   const Tensor& dv, const Tensor& drel_bias) {
  const Geometry g = geometry<T>(q, v, opt);
  const DType dt = q.dtype();
  const T scale = static_cast<T>(g.scale);
  BackwardArgs<T> f{};
  f.g = g;
  f.q = q.data<T>(), f.dout = dout.data<T>(), f.lse = lse.data<T>();
  f.dq = dq.data<T>(), f.dk = dk.data<T>(), f.dv = dv.data<T>();

  // D_i = rowsum(dout * out), each row reduced whole by one thread.
  Tensor delta = Tensor::empty({g.BH, g.Tq}, dt);
  {
    const T* o = out.data<T>();
    const T* d = dout.data<T>();
    T* di = delta.data<T>();
#pragma omp parallel for schedule(static) if (g.BH * g.Tq * g.Dv > 65536)
    for (int64_t row = 0; row < g.BH * g.Tq; ++row) {
      T acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t c = 0; c < g.Dv; ++c) acc += d[row * g.Dv + c] * o[row * g.Dv + c];
      di[row] = acc;
    }
  }
  f.delta = delta.data<T>();

  std::vector<T> by_key, by_query;
  std::vector<int64_t> bucket;
  if (rel_bias.defined()) {
    bucket = bucket_table(g, opt);
    bias_tables(g, rel_bias.data<T>(), bucket, by_key, by_query);
    f.by_key = by_key.data(), f.by_query = by_query.data();
  }

  Tensor kp = Tensor::empty({g.BH, g.Tkp, g.Dp}, dt);
  pack_rows(k.data<T>(), g.BH, g.Tk, g.D, g.Tkp, g.Dp, T(1), kp.data<T>(), g.Tk * g.D);
  f.kp = kp.data<T>();
  {  // Pass 1: dq over query tiles; the transposed k and v live only for this pass.
    Tensor kt = Tensor::empty({g.BH, g.nkt, g.D, kTile}, dt);
    Tensor vt = Tensor::empty({g.BH, g.nkt, g.Dv, kTile}, dt);
    pack_tiles_transposed(k.data<T>(), g.BH, g.Tk, g.D, g.Tkp, T(1), kt.data<T>(), g.Tk * g.D);
    pack_tiles_transposed(v.data<T>(), g.BH, g.Tk, g.Dv, g.Tkp, T(1), vt.data<T>(), g.Tk * g.Dv);
    f.kt = kt.data<T>(), f.vt = vt.data<T>();
    const auto fn = pick_tile<T, Pass::dq, BackwardArgs<T>>();
    run_tasks<T>(g.BH * g.nqt, g, false,
                 [&](int64_t t, Scratch<T>& w) { fn(f, t / g.nqt, g.nqt - 1 - t % g.nqt, w); });
    f.kt = f.vt = nullptr;
  }

  // Pass 2: dk, dv (and the bias partial sums) over key tiles.
  Tensor vp = Tensor::empty({g.BH, g.Tkp, g.Dvp}, dt);
  Tensor qst = Tensor::empty({g.BH, g.nqt, g.D, kTile}, dt);
  Tensor qsp = Tensor::empty({g.BH, g.Tqp, g.Dp}, dt);
  Tensor dot = Tensor::empty({g.BH, g.nqt, g.Dv, kTile}, dt);
  Tensor dop = Tensor::empty({g.BH, g.Tqp, g.Dvp}, dt);
  pack_rows(v.data<T>(), g.BH, g.Tk, g.Dv, g.Tkp, g.Dvp, T(1), vp.data<T>(), g.Tk * g.Dv);
  pack_tiles_transposed(q.data<T>(), g.BH, g.Tq, g.D, g.Tqp, scale, qst.data<T>(), g.Tq * g.D);
  pack_rows(q.data<T>(), g.BH, g.Tq, g.D, g.Tqp, g.Dp, scale, qsp.data<T>(), g.Tq * g.D);
  pack_tiles_transposed(dout.data<T>(), g.BH, g.Tq, g.Dv, g.Tqp, T(1), dot.data<T>(), g.Tq * g.Dv);
  pack_rows(dout.data<T>(), g.BH, g.Tq, g.Dv, g.Tqp, g.Dvp, T(1), dop.data<T>(), g.Tq * g.Dv);
  f.vp = vp.data<T>(), f.qst = qst.data<T>(), f.qsp = qsp.data<T>();
  f.dot = dot.data<T>(), f.dop = dop.data<T>();
  const bool bias_grad = drel_bias.defined();
  Tensor partial;
  if (bias_grad) {
    partial = Tensor::empty({g.BH, g.nkt, opt.num_buckets}, DType::f64);
    f.bucket = bucket.data(), f.num_buckets = opt.num_buckets;
    f.bias_partial = partial.data<double>();
  }
  const auto fn = pick_tile<T, Pass::dkv, BackwardArgs<T>>();
  run_tasks<T>(g.BH * g.nkt, g, bias_grad,
               [&](int64_t t, Scratch<T>& w) { fn(f, t / g.nkt, t % g.nkt, w); });

  if (bias_grad) {
    // drel_bias[n, h] = sum over b, then key tiles, in that fixed order.
    const double* part = partial.data<double>();
    T* db = drel_bias.data<T>();
    const int64_t NB = opt.num_buckets, B = g.BH / std::max(g.H, int64_t(1));
    for (int64_t n = 0; n < NB; ++n)
      for (int64_t h = 0; h < g.H; ++h) {
        double acc = 0;
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < g.nkt; ++t) acc += part[((b * g.H + h) * g.nkt + t) * NB + n];
        db[n * g.H + h] = static_cast<T>(acc);
      }
  }
}

template <class T>
void rotary_impl(const T* x, T* y, int64_t rows, int64_t Tn, int64_t D, int64_t offset, double base,
                 bool inverse) {
  const int64_t half = D / 2;
  // cos and sin per (t, i), computed in double as the reference does, then rounded once.
  std::vector<T> cs(Tn * half), sn(Tn * half);
#pragma omp parallel for schedule(static) if (Tn * half > 16384)
  for (int64_t t = 0; t < Tn; ++t) {
    const double pos = static_cast<double>(offset + t);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * std::pow(base, -2.0 * static_cast<double>(i) / D);
      cs[t * half + i] = static_cast<T>(std::cos(angle));
      sn[t * half + i] = static_cast<T>(inverse ? -std::sin(angle) : std::sin(angle));
    }
  }
#pragma omp parallel for schedule(static) if (rows * D > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const T* c = cs.data() + (r % Tn) * half;
    const T* s = sn.data() + (r % Tn) * half;
    const T* xr = x + r * D;
    T* yr = y + r * D;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      const T a = xr[i], b = xr[i + half];
      yr[i] = a * c[i] - b * s[i];
      yr[i + half] = a * s[i] + b * c[i];
    }
  }
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                       const AttentionOptions& opt, const Tensor& out, const Tensor& lse) {
  RILL_DISPATCH_FLOAT(q.dtype(), "attention", T,
                      { forward_impl<T>(q, k, v, rel_bias, opt, out, lse); });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_bias,
                        const Tensor& out, const Tensor& lse, const Tensor& dout,
                        const AttentionOptions& opt, const Tensor& dq, const Tensor& dk,
                        const Tensor& dv, const Tensor& drel_bias) {
  RILL_DISPATCH_FLOAT(q.dtype(), "attention_backward", T, {
    backward_impl<T>(q, k, v, rel_bias, out, lse, dout, opt, dq, dk, dv, drel_bias);
  });
}

void rotary(const Tensor& x, int64_t offset, double base, bool inverse, const Tensor& y) {
  RILL_DISPATCH_FLOAT(x.dtype(), "rotary", T, {
    const int64_t D = x.size(-1);
    rotary_impl<T>(x.data<T>(), y.data<T>(), D == 0 ? 0 : x.numel() / D, x.size(-2), D, offset,
                   base, inverse);
  });
}

}  // namespace rill::cpu
