// Pieces shared by the cpu kernels of the gated-state op (linear_attention.cpp, the scalar decay
// and no decay; vector_decay.cpp, key- and value-side vector decays): a vectorisable exp for
// log-decays, the chunk bookkeeping, and the decayed prefix sum over chunks, written once.
// Internal to the cpu backend.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <limits>
#include <vector>

#include "rill/backend/linear_attention.h"

namespace rill::cpu::gated_state {

// ---------------------------------------------------------------------------------------------
// exp of a log-decay, vectorisable.
//
// std::exp is a libm call that GCC will not vectorise without -ffast-math; this one is: x = n ln2
// + r, exp(r) by a Taylor polynomial on |r| <= ln2/2, 2^n built from bits. Results below the
// normal range flush to 0. Not vec_math's libmvec exp: its f32 error (up to 4 ulp) compounds
// through the T decays of a scan, and the broadcast-decay gradient, a sum of cancelling terms
// over T, then left the tolerance table (tested: LinearAttention.FormsMatchRef).

template <class T>
struct ExpConsts;
template <>
struct ExpConsts<double> {
  using Bits = uint64_t;
  static constexpr double kMin = -708.0, kShift = 0x1.8p52;
  static constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
  static constexpr int kMantissa = 52, kBias = 1023, kDegree = 13;
};
template <>
struct ExpConsts<float> {
  using Bits = uint32_t;
  static constexpr float kMin = -87.0f, kShift = 0x1.8p23f;
  static constexpr float kLn2Hi = 6.9314575195e-01f, kLn2Lo = 1.4286067653e-06f;
  static constexpr int kMantissa = 23, kBias = 127, kDegree = 8;
};

template <class T>
constexpr std::array<T, ExpConsts<T>::kDegree + 1> inverse_factorials() {
  std::array<T, ExpConsts<T>::kDegree + 1> a{};
  double f = 1;
  for (int k = 0; k <= ExpConsts<T>::kDegree; ++k) {
    if (k > 0) f /= k;
    a[k] = static_cast<T>(f);
  }
  return a;
}
template <class T>
constexpr auto kInvFactorial = inverse_factorials<T>();

// exp(x) for x <= 0 or NaN. The clamp is done with bit masks, not a ternary: GCC turns a select
// into a branch here, and a branch stops vectorisation.
template <class T>
[[gnu::always_inline]] inline T exp_nonpos(T x) {
  using C = ExpConsts<T>;
  using Bits = typename C::Bits;
  constexpr Bits kAbs = ~Bits(0) >> 1;
  constexpr Bits kInf = std::bit_cast<Bits>(std::numeric_limits<T>::infinity());
  constexpr Bits kMinBits = std::bit_cast<Bits>(C::kMin);
  const Bits xb = std::bit_cast<Bits>(x);
  const bool nan = (xb & kAbs) > kInf;
  const Bits small = Bits(0) - static_cast<Bits>(!nan & (xb > kMinBits));  // all ones or zero
  const T xc = std::bit_cast<T>((kMinBits & small) | (xb & ~small));
  const T t = xc * T(1.4426950408889634) + C::kShift;
  const T n = t - C::kShift;
  const T r = (xc - n * C::kLn2Hi) - n * C::kLn2Lo;
  T p = kInvFactorial<T>[C::kDegree];
  for (int k = C::kDegree - 1; k >= 0; --k) p = p * r + kInvFactorial<T>[k];
  const Bits e = std::bit_cast<Bits>(t) - std::bit_cast<Bits>(C::kShift) + Bits(C::kBias);
  const T y = p * std::bit_cast<T>(static_cast<Bits>(e << C::kMantissa));
  return std::bit_cast<T>(std::bit_cast<Bits>(y) & ~small);
}

// y[i] = exp(x[i]) for n values, x <= 0.
template <class T>
void exp_array(const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = exp_nonpos(x[i]);
}

// Below this many state-element updates (a few us of work) a call stays on one thread: forking
// costs about as much, and far more when the machine is oversubscribed.
constexpr int64_t kParallelMinWork = 1 << 18;

// x . y over n values.
template <class T>
T dot(const T* x, const T* y, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += x[i] * y[i];
  return acc;
}

template <class T>
struct Chunks {
  int64_t n, len, dk, dv, c, nc;  // sequences, tokens, sizes, chunk length, number of chunks
  int64_t rows(int64_t i) const { return std::min(c, len - i * c); }
  // The team size of every region: one thread for small calls.
  int threads() const { return n * len * dk * dv > kParallelMinWork ? omp_get_max_threads() : 1; }
};

template <class T>
Chunks<T> chunks_of(const GatedStateArgs& a, int64_t chunk) {
  Chunks<T> ch;
  ch.n = a.n(), ch.len = a.len(), ch.dk = a.dk(), ch.dv = a.dv();
  ch.c = std::max<int64_t>(1, std::min(chunk, ch.len));
  ch.nc = (ch.len + ch.c - 1) / ch.c;
  return ch;
}

// Rows of x [m, cols] (row stride ld) times scale[i].
template <class T>
void scale_rows(T* x, int64_t m, int64_t cols, int64_t ld, const T* scale) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = x + i * ld;
    const T f = scale[i];
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) row[j] *= f;
  }
}
// y [m, cols] = diag(scale) x, both with row stride cols.
template <class T>
void scaled_rows(const T* x, int64_t m, int64_t cols, const T* scale, T* y) {
  for (int64_t i = 0; i < m; ++i) {
    const T f = scale[i];
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) y[i * cols + j] = f * x[i * cols + j];
  }
}

// The prefix sum over chunks, forward and reverse, written once. blocks [n, nc, Dk, Dv] hold each
// chunk's own term P_i on entry; on exit each holds the running state R_i it was reached with:
//   forward: R_0 = init,      R_{i+1} = a_i R_i + P_i,
//   reverse: R_{nc-1} = init, R_{i-1} = a_i R_i + P_i,
// and fin (when given) the last R. The chunks' decays: a [n, nc] scalars (null: none, plain
// sums), or a vector decay, a_i = ra_i cb_i^T with ra [n, nc, Dk] over the rows and cb
// [n, nc, Dv] over the columns (either null: 1), used when a is null. init null means zeros.
// A worksharing loop over state rows, sequential in i per row, so every state is bitwise fixed:
// call it from inside a parallel region.
template <class T>
void chunk_prefix(const Chunks<T>& ch, T* blocks, const T* a, const T* init, T* fin, bool reverse,
                  const T* ra = nullptr, const T* cb = nullptr) {
  const int64_t sz = ch.dk * ch.dv, rows = ch.n * ch.dk;
  std::vector<T> run_row(ch.dv);  // this thread's running sum of one state row
  T* run = run_row.data();
#pragma omp for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / ch.dk, row_off = (r % ch.dk) * ch.dv;
    T* base = blocks + b * ch.nc * sz + row_off;
    for (int64_t x = 0; x < ch.dv; ++x) run[x] = init ? init[b * sz + row_off + x] : T(0);
    for (int64_t s = 0; s < ch.nc; ++s) {
      const int64_t i = reverse ? ch.nc - 1 - s : s;
      T* row = base + i * sz;
      if (a) {
        const T ai = a[b * ch.nc + i];
#pragma omp simd
        for (int64_t x = 0; x < ch.dv; ++x) {
          const T own = row[x];
          row[x] = run[x];
          run[x] = ai * run[x] + own;
        }
      } else if (ra || cb) {
        const T rai = ra ? ra[(b * ch.nc + i) * ch.dk + r % ch.dk] : T(1);
        const T* cbi = cb ? cb + (b * ch.nc + i) * ch.dv : nullptr;
#pragma omp simd
        for (int64_t x = 0; x < ch.dv; ++x) {
          const T own = row[x];
          row[x] = run[x];
          run[x] = rai * (cbi ? cbi[x] : T(1)) * run[x] + own;
        }
      } else {
#pragma omp simd
        for (int64_t x = 0; x < ch.dv; ++x) {
          const T own = row[x];
          row[x] = run[x];
          run[x] += own;
        }
      }
    }
    if (fin)
      for (int64_t x = 0; x < ch.dv; ++x) fin[b * sz + row_off + x] = run[x];
  }
}

}  // namespace rill::cpu::gated_state
