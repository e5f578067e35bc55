// The dispatch of each vec_math kernel to the AVX2 or AVX-512 table, at the SIMD level of
// cpu/isa.h (detected once, RILL_ISA, SimdLevelOverride).
#include "rill/backend/cpu/vec_math.h"

#include <type_traits>

#include "rill/backend/cpu/isa.h"
#include "rill/backend/cpu/vec_math_isa.h"
#include "rill/core/error.h"

namespace rill::cpu {

namespace {

template <class T>
const VecTable<T>& table() {
  const bool wide = simd_level() >= SimdLevel::avx512;
  if constexpr (std::is_same_v<T, float>)
    return wide ? avx512::table_f32() : avx2::table_f32();
  else
    return wide ? avx512::table_f64() : avx2::table_f64();
}

}  // namespace

bool vec_has_unary(UnaryOp op) {
  switch (op) {
    case UnaryOp::exp:
    case UnaryOp::log:
    case UnaryOp::tanh:
    case UnaryOp::sigmoid:
    case UnaryOp::silu:
    case UnaryOp::gelu_tanh:
    case UnaryOp::gelu_erf:
    case UnaryOp::elu:
    case UnaryOp::softplus:
      return true;
    default:
      return false;
  }
}

bool vec_has_unary_backward(UnaryOp op) {
  switch (op) {
    case UnaryOp::tanh:
    case UnaryOp::sigmoid:
    case UnaryOp::elu:
    case UnaryOp::silu:
    case UnaryOp::gelu_tanh:
    case UnaryOp::gelu_erf:
    case UnaryOp::softplus:
      return true;
    default:
      return false;
  }
}

template <class T>
void vec_unary(UnaryOp op, const UnaryParams& p, const T* x, T* y, int64_t n) {
  table<T>().unary(op, p, x, y, n);
}

template <class T>
void vec_unary_backward(UnaryOp op, const UnaryParams& p, const T* x, const T* dy, T* dx,
                        int64_t n) {
  table<T>().unary_backward(op, p, x, dy, dx, n);
}

template <class T>
T vec_row_max(const T* x, int64_t n) {
  return table<T>().row_max(x, n);
}

template <class T>
T vec_row_sum_exp(const T* x, T m, int64_t n, T* e) {
  return table<T>().row_sum_exp(x, m, n, e);
}

template <class T>
void vec_scaled_exp(const T* x, T a, T b, T scale, T* y, int64_t n) {
  table<T>().scaled_exp(x, a, b, scale, y, n);
}

template <class T>
void vec_log_softmax_backward(const T* y, const T* g, T s, T* dx, int64_t n) {
  table<T>().log_softmax_backward(y, g, s, dx, n);
}

#define RILL_VEC_INSTANTIATE(T)                                                            \
  template void vec_unary<T>(UnaryOp, const UnaryParams&, const T*, T*, int64_t);          \
  template void vec_unary_backward<T>(UnaryOp, const UnaryParams&, const T*, const T*, T*, \
                                      int64_t);                                            \
  template T vec_row_max<T>(const T*, int64_t);                                            \
  template T vec_row_sum_exp<T>(const T*, T, int64_t, T*);                                 \
  template void vec_scaled_exp<T>(const T*, T, T, T, T*, int64_t);                         \
  template void vec_log_softmax_backward<T>(const T*, const T*, T, T*, int64_t);
RILL_VEC_INSTANTIATE(float)
RILL_VEC_INSTANTIATE(double)
#undef RILL_VEC_INSTANTIATE

}  // namespace rill::cpu
