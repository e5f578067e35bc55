// NCGRUCell: the GRU whose candidate uses an orthogonal recurrent matrix, from "Orthogonal Gated
// Recurrent Unit with Neumann-Cayley Transformation" (Mucllari et al. 2022, arXiv 2208.06496);
// the Compact Recurrent Transformer (Mucllari et al. 2025) updates its memory vector with it.
//   r  = s(W_ir x + b_ir + W_hr h),   u = s(W_iu x + b_iu + W_hu h)
//   z  = U_c x + b_z + r * (W_c h)    (NCGRUReset::after_matmul, the PyTorch reference: default)
//   z  = U_c x + b_z + W_c (r * h)    (NCGRUReset::before_matmul, the TensorFlow reference)
//   c  = modReLU(z) = ReLU(|z| + b_c) * sign(z)
//   h' = u * h + (1 - u) * c
// with s the sigmoid, * elementwise, and W_c = (I + A)^{-1} (I - A) D the scaled Cayley transform
// of a skew-symmetric A, D = diag(+-1) fixed with its `negative_ones` -1 entries last (as in
// scoRNN, Helfrich et al. 2018; a Cayley transform alone cannot reach eigenvalue -1).
//
// Choices, and why:
// - W_c is computed EXACTLY, by a linear solve (rill/ops/linalg.h) under ordinary autograd,
//   where the reference code updates A with a custom gradient and a truncated Neumann series for
//   (I + A)^{-1}. W_c is then orthogonal to rounding after any number of steps of any optimiser.
//   I + A is always well conditioned: x^T A x = 0 gives |(I + A) x|^2 = |x|^2 + |A x|^2, so its
//   smallest singular value is >= 1.
// - A = P - P^T from a free trainable P [H, H] (no triangular masking). Its gradient
//   G - G^T is skew, so elementwise optimisers (Adam, SGD) leave P's symmetric part where it
//   starts: zero. Weight decay (param_groups decays P, a weight) pulls A, hence W_c, toward D.
// - P starts with the Cayley initialisation of the scoRNN / expRNN line of work: P[2k, 2k+1] =
//   tan(t_k / 2), t_k ~ U(0, pi/2), all else 0, so that (for D = I) W_c rotates each plane
//   (2k, 2k+1) by t_k: eigenvalues e^{+-i t_k} spread over the right half of the unit circle, and
//   units mix from the first step. A tiny random P (the other obvious choice) would start W_c at
//   nearly D, every unit feeding only itself. With odd H the last unit has angle 0.
// - Every other weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as GRUCell (PyTorch's GRU); the
//   modReLU bias b_c ~ U(-0.01, 0.01), as expRNN's modrelu: near 0, so c ~ z at the start and no
//   unit starts dead (a unit with |z| < -b_c outputs 0 and passes no gradient).
// - forward(x, h) forms W_c (one O(H^3) solve) on every call. A caller running many steps with
//   the same parameters should form it once, w_c = recurrent_matrix(), and call
//   forward(x, h, w_c) each step: gradients still reach P through w_c.
#pragma once
#include <cstdint>

#include "rill/nn/module.h"

namespace rill::nn {

// Where the reset gate acts in the candidate (see above).
enum class NCGRUReset {
  after_matmul,   // z = U_c x + b_z + r * (W_c h): the PyTorch reference
  before_matmul,  // z = U_c x + b_z + W_c (r * h): the TensorFlow reference
};

// modReLU for real inputs (Arjovsky et al. 2016): ReLU(|z| + bias) * sign(z), sign(0) = 0.
// z [..., H], bias [H] (broadcast over the leading dims).
Tensor modrelu(const Tensor& z, const Tensor& bias);

class NCGRUCell : public Module {
 public:
  // negative_ones in [0, hidden]: how many -1 entries D has.
  NCGRUCell(int64_t input, int64_t hidden, uint64_t seed, DType dtype = DType::f32,
            int64_t negative_ones = 0, NCGRUReset reset = NCGRUReset::after_matmul);

  // x [B, input], h [B, hidden] -> h' [B, hidden]; forms W_c itself.
  Tensor forward(const Tensor& x, const Tensor& h) const;
  // The same with w_c [hidden, hidden] = recurrent_matrix() formed once by the caller.
  Tensor forward(const Tensor& x, const Tensor& h, const Tensor& w_c) const;
  // W_c = (I + A)^{-1} (I - A) D [hidden, hidden], A = P - P^T: a fresh solve on every call.
  Tensor recurrent_matrix() const;

  int64_t hidden, negative_ones;
  NCGRUReset reset;
  Tensor weight_ih;  // [3H, input]: W_ir, W_iu, U_c
  Tensor bias_ih;    // [3H]: b_ir, b_iu, b_z
  Tensor weight_hh;  // [2H, H]: W_hr, W_hu (one bias per gate, in bias_ih)
  Tensor cayley_p;   // [H, H]: the free matrix P of A = P - P^T
  Tensor bias_c;     // [H]: the modReLU bias b_c
  Tensor cayley_d;   // [H]: D's diagonal, +1 then negative_ones -1; fixed, not a parameter

 private:
  Tensor identity_;  // [H, H]
};

}  // namespace rill::nn
