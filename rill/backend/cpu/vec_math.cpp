// Run-time choice of the vec_math ISA (CPU detection once, RILL_ISA, IsaOverride) and the
// dispatch of each kernel to the AVX2 or AVX-512 table.
#include "rill/backend/cpu/vec_math.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "rill/backend/cpu/vec_math_isa.h"
#include "rill/core/error.h"

namespace rill::cpu {

namespace {

// The AVX-512 build is compiled for F, DQ, BW and VL (Skylake-X and later, Zen 4 and later).
// GCC's __builtin_cpu_supports also checks that the OS saves the zmm state (XCR0).
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

Isa detect() {
  const Isa best = cpu_has_avx512() ? Isa::avx512 : Isa::avx2;
  const char* env = std::getenv("RILL_ISA");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return best;
  if (std::strcmp(env, "avx2") == 0) return Isa::avx2;
  if (std::strcmp(env, "avx512") == 0) {
    if (best == Isa::avx512) return Isa::avx512;
    std::fprintf(stderr, "rill: RILL_ISA=avx512 but this CPU has no AVX-512; using avx2\n");
    return Isa::avx2;
  }
  std::fprintf(stderr, "rill: unknown RILL_ISA=%s (expected avx2, avx512 or auto); using %s\n", env,
               isa_name(best));
  return best;
}

std::atomic<Isa>& current() {
  static std::atomic<Isa> isa{detect()};
  return isa;
}

template <class T>
const VecTable<T>& table() {
  const bool wide = current().load(std::memory_order_relaxed) == Isa::avx512;
  if constexpr (std::is_same_v<T, float>)
    return wide ? avx512::table_f32() : avx2::table_f32();
  else
    return wide ? avx512::table_f64() : avx2::table_f64();
}

}  // namespace

const char* isa_name(Isa isa) { return isa == Isa::avx512 ? "avx512" : "avx2"; }

bool isa_supported(Isa isa) {
  static const bool avx512 = cpu_has_avx512();
  return isa == Isa::avx2 || avx512;
}

Isa active_isa() { return current().load(std::memory_order_relaxed); }

IsaOverride::IsaOverride(Isa isa) : prev_(active_isa()) {
  RILL_CHECK(isa_supported(isa), "IsaOverride: this CPU cannot run {}", isa_name(isa));
  current().store(isa, std::memory_order_relaxed);
}

IsaOverride::~IsaOverride() { current().store(prev_, std::memory_order_relaxed); }

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
