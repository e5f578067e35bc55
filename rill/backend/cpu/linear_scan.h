// Fast kernels of the first-order linear scan h_t = a_t ⊙ h_{t-1} + b_t and its adjoint (a
// reverse scan of the same kind): parallel over lanes, vectorised across contiguous lanes, and
// chunked across time when there are too few lanes to keep the threads busy.
#pragma once
#include "rill/backend/linear_scan.h"

namespace rill::cpu {

// Same contract as ref::linear_scan / ref::linear_scan_backward (every tensor contiguous).
void linear_scan(const LinearScanArgs& args, const Tensor& out);
void linear_scan_backward(const LinearScanArgs& args, const Tensor& h, const Tensor& g,
                          const LinearScanGrads& grads);

// How many time chunks the kernels split a [N,T,D] scan into: 1 when N*D has enough lane tiles,
// otherwise up to 16 chunks of at least 128 steps. A function of the shape only, never of the
// thread count, so results are bitwise identical for any number of threads.
int64_t linear_scan_chunks(int64_t n, int64_t len, int64_t d);

}  // namespace rill::cpu
