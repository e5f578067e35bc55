// Naive strided iteration for the reference backend: visits every index of a shape in row-major
// order and hands over the element offset of each operand. Clarity over speed, always.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "rill/core/tensor.h"

namespace rill::ref {

// fn(std::array<int64_t, N> offsets) for every index; offsets include each tensor's own offset.
// Every operand must have `shape` (broadcast operands are expanded views with stride 0).
template <size_t N, class F>
void for_each_offset(const Shape& shape, const std::array<const Tensor*, N>& ts, F&& fn) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t total = numel(shape);
  std::vector<int64_t> idx(rank, 0);
  for (int64_t n = 0; n < total; ++n) {
    std::array<int64_t, N> off;
    for (size_t k = 0; k < N; ++k) {
      off[k] = ts[k]->offset();
      for (int64_t d = 0; d < rank; ++d) off[k] += idx[d] * ts[k]->strides()[d];
    }
    fn(off);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Base pointer of a tensor's storage, typed (offsets from for_each_offset index into it).
template <class T>
T* base_ptr(const Tensor& t) {
  return static_cast<T*>(t.impl()->storage->data);
}

}  // namespace rill::ref
