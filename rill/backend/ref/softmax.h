// Reference kernels of the softmax family: softmax / log_softmax over the last dim of a
// contiguous [rows, C] tensor, their backward, and fused softmax cross-entropy. Naive loops.
#pragma once
#include <cstdint>

#include "rill/core/tensor.h"

namespace rill::ref {

// y = softmax(x), or log_softmax(x) when `log`, along C; x and y are contiguous [rows, C].
void softmax_forward(const Tensor& x, const Tensor& y, bool log);
// From the saved output y: softmax dx = y * (dy - sum(dy * y)); log_softmax
// dx = dy - exp(y) * sum(dy). All contiguous [rows, C].
void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log);

// logits contiguous [rows, C]; target contiguous [rows] (i32/i64, each in [0, C) or equal to
// ignore_index); count = the number of rows not ignored. Writes, for every row, row_max = max(x)
// and row_logsum = log(sum(exp(x - row_max))) (logsumexp = row_max + row_logsum, kept apart so
// that logits far from 0 lose no precision), and loss [] = the mean over non-ignored rows of
// logsumexp - x[target] (0 when count is 0).
void cross_entropy_forward(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                           int64_t count, const Tensor& row_max, const Tensor& row_logsum,
                           const Tensor& loss);
// dlogits = dloss / count * (softmax(logits) - onehot(target)) on non-ignored rows, 0 on
// ignored rows; dloss is [] and dlogits contiguous [rows, C].
void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& row_max,
                            const Tensor& row_logsum, const Tensor& dloss, int64_t ignore_index,
                            int64_t count, const Tensor& dlogits);

}  // namespace rill::ref
