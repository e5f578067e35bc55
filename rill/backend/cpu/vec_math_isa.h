// Internal to vec_math: the table of kernels that each ISA's object file exports. The kernels
// themselves are compiled under `#pragma GCC target` in vec_math_avx2.cpp / vec_math_avx512.cpp;
// only these plain accessors cross the boundary, so no function is declared with one target and
// defined with another (which C++ would read as function multi-versioning).
#pragma once
#include <cstdint>

#include "rill/backend/elementwise_math.h"

namespace rill::cpu {

template <class T>
struct VecTable {
  void (*unary)(UnaryOp, const UnaryParams&, const T*, T*, int64_t);
  void (*unary_backward)(UnaryOp, const UnaryParams&, const T*, const T*, T*, int64_t);
  T (*row_max)(const T*, int64_t);
  T (*row_sum_exp)(const T*, T, int64_t, T*);
  void (*scaled_exp)(const T*, T, T, T, T*, int64_t);
  void (*log_softmax_backward)(const T*, const T*, T, T*, int64_t);
};

namespace avx2 {
const VecTable<float>& table_f32();
const VecTable<double>& table_f64();
}  // namespace avx2

namespace avx512 {
const VecTable<float>& table_f32();
const VecTable<double>& table_f64();
}  // namespace avx512

}  // namespace rill::cpu
