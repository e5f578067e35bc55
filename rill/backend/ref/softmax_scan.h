// Reference kernels of the softmax scan, written for clarity and deliberately unlike the cpu
// ones: the forward is the paper's sequential recurrence (Feng et al. 2024, section 3.1) with
// its (a, c, m) state, and the backward is the gradient of naive causal softmax attention with a
// fixed query, O(T^2): every output's softmax over its visible scores, formed afresh.
#pragma once
#include "rill/backend/softmax_scan.h"

namespace rill::ref {

// out [N,T,D], lse [N,T].
void softmax_scan(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse);
// With p_{t,i} = exp(s_i - lse_t) the weight of token i in output t (the state before step 0
// counted as one more token, score lse0 and value o0, visible until a reset):
//   ds_i = sum_{t>=i} p_{t,i} (g_out_t . (v_i - out_t) + g_lse_t),  dv_i = sum_t p_{t,i} g_out_t.
void softmax_scan_backward(const SoftmaxScanArgs& args, const Tensor& out, const Tensor& lse,
                           const Tensor& g_out, const Tensor& g_lse, const SoftmaxScanGrads& grads);

}  // namespace rill::ref
