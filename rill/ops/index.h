// Joining and indexing: concat, stack, index_select, gather, embedding. Indices are i32 or i64
// and must lie in [0, size); anything else is an error naming the op, the index and the shapes.
#pragma once
#include <cstdint>
#include <vector>

#include "rill/core/tensor.h"

namespace rill {

// Joins tensors of one dtype and rank that agree outside `dim` along `dim`.
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// concat({cache, x}, dim) for a cache that grows by appends (a KV cache): the result is a view
// of a buffer with room to grow along dim (capacity 1.5x the length, at least 64). When cache is
// such a view whose buffer no one has appended to past it, x is written after it in place, so an
// append costs O(x), not O(cache), amortised; any other cache (a plain tensor, a clone, a loaded
// state, a fork whose buffer another view has since grown) is first copied into a new buffer.
// Appends write only past every view of the buffer handed out, so those views never change; two
// threads must not append to views of one buffer at once. The result is not contiguous (rows
// before dim are `capacity` apart) unless it fills its buffer. cache may be undefined (empty).
// Not differentiable: when the tape would record, it returns concat instead.
Tensor append(const Tensor& cache, const Tensor& x, int64_t dim);
// Joins tensors of one shape and dtype along a new dim (dim may equal the rank).
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// out[..., k, ...] = x[..., index[k], ...] along dim; index is 1-D.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// torch.gather: out has index's shape and out[i] = x[i with i[dim] replaced by index[i]]; index
// has x's rank and is no larger than x outside dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// Rows of weight [V, D] picked by ids of any shape: [..., D].
Tensor embedding(const Tensor& weight, const Tensor& ids);

}  // namespace rill
