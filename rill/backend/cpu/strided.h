// Parallel strided iteration for the cpu backend. Dimensions that are contiguous in every
// operand are merged, the innermost run is cut into fixed-size chunks, and OpenMP spreads the
// (row, chunk) units over threads. The split never depends on the thread count.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "rill/core/tensor.h"

namespace rill::cpu {

constexpr int64_t kChunk = 1 << 14;  // elements per parallel unit along the innermost run

// Shape and per-operand strides after merging dims that are contiguous for every operand.
template <size_t N>
struct Collapsed {
  Shape shape;
  std::array<Shape, N> strides;
};

template <size_t N>
Collapsed<N> collapse(const Shape& shape, const std::array<const Tensor*, N>& ts) {
  Collapsed<N> c;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims never move the offset
    bool merge = !c.shape.empty();
    for (size_t k = 0; k < N && merge; ++k)
      merge = c.strides[k].back() == ts[k]->strides()[d] * shape[d];
    if (merge) {
      c.shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) c.strides[k].back() = ts[k]->strides()[d];
    } else {
      c.shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) c.strides[k].push_back(ts[k]->strides()[d]);
    }
  }
  if (c.shape.empty()) {
    c.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) c.strides[k].push_back(1);
  }
  return c;
}

// fn(std::array<int64_t,N> start_offsets, std::array<int64_t,N> inner_strides, int64_t len)
// over runs of the innermost dim; runs are processed in parallel.
template <size_t N, class F>
void parallel_runs(const Shape& shape, const std::array<const Tensor*, N>& ts, F&& fn) {
  if (numel(shape) == 0) return;
  Collapsed<N> c = collapse(shape, ts);
  const int64_t rank = static_cast<int64_t>(c.shape.size());
  const int64_t inner = c.shape.back();
  const int64_t chunks_per_row = (inner + kChunk - 1) / kChunk;
  const int64_t rows = numel(c.shape) / inner;
  const int64_t units = rows * chunks_per_row;
  std::array<int64_t, N> inner_strides;
  for (size_t k = 0; k < N; ++k) inner_strides[k] = c.strides[k].back();
#pragma omp parallel for schedule(static) if (units > 1 && numel(shape) > 32768)
  for (int64_t u = 0; u < units; ++u) {
    int64_t row = u / chunks_per_row, chunk = u % chunks_per_row;
    std::array<int64_t, N> off;
    for (size_t k = 0; k < N; ++k) off[k] = ts[k]->offset();
    int64_t r = row;
    for (int64_t d = rank - 2; d >= 0; --d) {
      int64_t i = r % c.shape[d];
      r /= c.shape[d];
      for (size_t k = 0; k < N; ++k) off[k] += i * c.strides[k][d];
    }
    int64_t begin = chunk * kChunk;
    int64_t len = std::min(kChunk, inner - begin);
    for (size_t k = 0; k < N; ++k) off[k] += begin * inner_strides[k];
    fn(off, inner_strides, len);
  }
}

template <class T>
T* base_ptr(const Tensor& t) {
  return static_cast<T*>(t.impl()->storage->data);
}

}  // namespace rill::cpu
