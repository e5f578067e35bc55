// Reference kernels of the first-order linear scan: one plain loop per lane, in the order of the
// equations, written for clarity. The oracle for the cpu kernels.
#pragma once
#include "rill/backend/linear_scan.h"

namespace rill::ref {

// out [N,T,D]: h_t = a_t h_{t-1} + b_t with h_{-1} = h0 (zeros when undefined).
void linear_scan(const LinearScanArgs& args, const Tensor& out);
// With lambda_t = g_t + a_{t+1} lambda_{t+1} (lambda_T = 0): db_t = lambda_t,
// da_t = lambda_t h_{t-1}, dh0 = a_0 lambda_0. h is the forward's output.
void linear_scan_backward(const LinearScanArgs& args, const Tensor& h, const Tensor& g,
                          const LinearScanGrads& grads);

}  // namespace rill::ref
