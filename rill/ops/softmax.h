// The fused softmax family: softmax and log_softmax along any dim, and softmax cross-entropy.
// Each has a hand-written backward kernel.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill {

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
// logits [..., C] floating, target [...] i32/i64 class ids; mean over the targets != ignore_index
// (0 when all are ignored). Fused: the forward saves only the per-row logsumexp; backward
// recomputes softmax. (The logsumexp is kept as row max plus log-sum, so that logits far from 0,
// such as +-1000 in f32, lose no precision.) A target outside [0, C) that is not ignore_index
// is an error.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100);

}  // namespace rill
