// Fast kernels for concatenation and indexing. The scatter-adds of the backwards give every
// destination element to one work unit that adds its sources in index order: no atomics, and
// bitwise identical results for any thread count. Indices arrive already checked to be in range.
#pragma once
#include <cstdint>
#include <vector>

#include "rill/core/tensor.h"

namespace rill::cpu {

// Copies xs one after another along dim into out (contiguous); each has out's shape except
// along dim.
void concat(const std::vector<Tensor>& xs, int64_t dim, const Tensor& out);
// out[..., k, ...] = x[..., index[k], ...] along dim; index is 1-D.
void index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// dx (contiguous) = 0, then dx[..., index[k], ...] += dy[..., k, ...] for k in order.
void index_select_backward(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx);
// out[i] = x[i with i[dim] replaced by index[i]]; out has index's shape.
void gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out);
// dx (contiguous) = 0, then dx[i with i[dim] replaced by index[i]] += dy[i], in order along dim.
void gather_backward(const Tensor& dy, int64_t dim, const Tensor& index, const Tensor& dx);

}  // namespace rill::cpu
