// The kernel arguments of the softmax scan (Aaren, Feng et al. 2024): for each sequence, the
// running softmax-weighted average of its values under fixed scores,
//   out_t = sum_{i<=t} exp(s_i - lse_t) v_i,   lse_t = log sum_{i<=t} exp(s_i),
// computed as a prefix scan of (m, u, w) elements under the associative operator below. Shared by
// the ref and cpu backends; the op has flattened the heads into the batch, so every kernel sees N
// sequences of T steps with D value features, all contiguous.
//
// A state carried in from earlier tokens is (lse0, o0): the log of their total weight and their
// weighted average. It enters the scan as one more element (m, u, w) = (lse0, 1, o0), and as the
// identity (-inf, 0, 0) when lse0 = -inf (nothing seen yet). The paper's m0 = 0 is not the
// identity: with every score far below 0 it gives 0/0.
//
// Shapes: N sequences (batch x heads), T steps, D value features.
#pragma once
#include <cmath>
#include <limits>

#include "rill/core/tensor.h"

namespace rill {

struct SoftmaxScanArgs {
  Tensor s;       // [N,T] the scores
  Tensor v;       // [N,T,D] the values
  Tensor lse0;    // [N] log-weight of the state before step 0; undefined = -inf (fresh)
  Tensor o0;      // [N,D] its average; undefined = zeros
  Tensor resets;  // [N,T] 1 where a sequence starts afresh before step t, else 0; undefined =
                  // none
};

// What the backward writes from the forward's args, outputs (out [N,T,D], lse [N,T]) and their
// gradients (g_out [N,T,D], g_lse [N,T]): ds [N,T] and dv [N,T,D] always, dlse0 [N] and do0 [N,D]
// when defined (undefined = not wanted).
struct SoftmaxScanGrads {
  Tensor ds, dv, dlse0, do0;
};

// The associative operator of the scan on elements (m, u, w) standing for a set A of tokens:
// m = max_{i in A} s_i, u = sum exp(s_i - m), w = sum exp(s_i - m) v_i (w has d entries):
//   (m_a, u_a, w_a) (+) (m_b, u_b, w_b) = (m, u_a e^{m_a-m} + u_b e^{m_b-m}, w_a e^{m_a-m} + ...)
// with m = max(m_a, m_b). Identity (-inf, 0, 0); exp(-inf - -inf) is taken as 0 by the branches.
// Combines b into a (a <- a (+) b), a coming first in time. One token is (s, 1, v).
template <class T>
inline void softmax_scan_combine(T& m_a, T& u_a, T* w_a, T m_b, T u_b, const T* w_b, int64_t d) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  if (m_b == kNegInf) return;  // b is the identity
  if (m_a == kNegInf) {        // a is the identity
    m_a = m_b, u_a = u_b;
    for (int64_t j = 0; j < d; ++j) w_a[j] = w_b[j];
    return;
  }
  if (m_b > m_a) {  // rescale a to b's max; b's own factor is exp(0) = 1
    const T r = std::exp(m_a - m_b);
    u_a = u_a * r + u_b;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) w_a[j] = w_a[j] * r + w_b[j];
    m_a = m_b;
  } else {
    const T r = std::exp(m_b - m_a);
    u_a += u_b * r;
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) w_a[j] += w_b[j] * r;
  }
}

}  // namespace rill
