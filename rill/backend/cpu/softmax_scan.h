// Fast kernels of the softmax scan (Aaren): the forward is a chunked parallel prefix scan under
// the (m, u, w) operator of backend/softmax_scan.h; the backward is the O(T)-memory adjoint of
// the equivalent gated form (two reverse first-order scans), never autograd through the scan.
#pragma once
#include "rill/backend/softmax_scan.h"

namespace rill::cpu {

// Same contract as ref::softmax_scan / ref::softmax_scan_backward (every tensor contiguous).
void softmax_scan(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse);
void softmax_scan_backward(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse,
                           const Tensor& g_out, const Tensor& g_lse, const SoftmaxScanGrads& grads);

// How many time chunks the forward cuts each of n sequences of len steps into: 1 when there are
// enough sequences to keep the threads busy, otherwise up to 16 chunks of at least 64 steps. A
// function of the shape only, never of the thread count, so results are bitwise identical for
// any number of threads.
int64_t softmax_scan_chunks(int64_t n, int64_t len);

}  // namespace rill::cpu
