// Causal depthwise convolution along time: the short local mixing of a layer's input that gives
// a recurrent mixer the order of the last few tokens (token shift is the width-2 case).
//
// Shapes: B batch, T time, D channels, W width.
//   y[b,t,d] = sum_{j<W} w[j,d] * xp[b,t-j,d],  xp[b,s] = x[b,s] for s >= 0, prev[b,W-1+s] for s <
//   0
// prev holds the W-1 inputs that came before this segment (the carried state; zeros when
// undefined), oldest first.
#pragma once
#include "rill/core/tensor.h"

namespace rill {

// x [B,T,D], w [W,D], prev [B,W-1,D] or undefined -> y [B,T,D]. Differentiable w.r.t. x, w
// and prev.
Tensor causal_conv1d(const Tensor& x, const Tensor& w, const Tensor& prev);

}  // namespace rill
