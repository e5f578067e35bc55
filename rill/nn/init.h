// Seeded parameter initialisation. Each call draws from the counter-based RNG, so a model built
// with the same seed has the same weights on any machine and thread count.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::nn {

// A distinct, reproducible seed for the k-th parameter drawn from a base seed.
uint64_t derive_seed(uint64_t seed, uint64_t k);

void normal_(const Tensor& t, double mean, double std, uint64_t seed);
void uniform_(const Tensor& t, double lo, double hi, uint64_t seed);
// Glorot & Bengio 2010 for a [fan_out, fan_in] weight: U(-a, a), a = gain * sqrt(6 / (in + out)).
void xavier_uniform_(const Tensor& t, uint64_t seed, double gain = 1.0);
// N(0, s^2), s = gain * sqrt(2 / (in + out)).
void xavier_normal_(const Tensor& t, uint64_t seed, double gain = 1.0);

// Saxe et al. 2014: t [rows, cols...] (flattened to rows x cols) gets orthonormal rows when
// rows <= cols, orthonormal columns otherwise, times gain (W W^T = gain^2 I, or W^T W). Drawn as a
// normal matrix orthonormalised by modified Gram-Schmidt in f64, so the same seed gives the same
// matrix everywhere. ReLiT's projections use gain sqrt(2) (relit.md 1.2).
void orthogonal_(const Tensor& t, uint64_t seed, double gain = 1.0);

}  // namespace rill::nn
