// Scalar definitions of the elementwise ops and their derivatives, shared by the ref and cpu
// backends (the backends differ in how they loop; the math is written once, here).
#pragma once
#include <cmath>
#include <cstdint>

namespace rill {

enum class UnaryOp {
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  tanh,
  sigmoid,
  relu,
  gelu_tanh,
  gelu_erf,
  silu,
  elu,
  softplus,
  clamp,
  pow,
  add_scalar,
  mul_scalar,
  abs
};
// eq, lt, gt give 1 or 0 in the operands' dtype (masks); they have no gradient.
enum class BinaryOp { add, sub, mul, div, eq, lt, gt };

// Parameters of the parameterised unary ops: elu (a = alpha), softplus (a = beta,
// b = threshold), clamp (a = lo, b = hi), pow (a = exponent), add_scalar / mul_scalar (a).
struct UnaryParams {
  double a = 0, b = 0;
};

const char* unary_name(UnaryOp op);
const char* binary_name(BinaryOp op);

// sigmoid and its slope from e = exp(-|x|), which never overflows: sigmoid(x) = (x >= 0 ? 1 : e)
// / (1 + e), and sigmoid(x) (1 - sigmoid(x)) = e / (1 + e)^2 with no cancellation in 1 - s (so
// the derivatives built on it keep their relative accuracy far into the tails).
template <class T>
inline T sigmoid_of(T x) {
  const T e = std::exp(-std::abs(x));
  return (x >= 0 ? T(1) : e) / (T(1) + e);
}
template <class T>
inline T sigmoid_slope_of(T x) {
  const T e = std::exp(-std::abs(x));
  return e / ((T(1) + e) * (T(1) + e));
}
// tanh'(x) = 1 - tanh(x)^2 = 4 e / (1 + e)^2 with e = exp(-2|x|): from x, not from the saved
// output, since 1 - y^2 has no correct digit left once |y| rounds near 1.
template <class T>
inline T tanh_slope_of(T x) {
  const T e = std::exp(T(-2) * std::abs(x));
  return T(4) * e / ((T(1) + e) * (T(1) + e));
}

constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;

template <UnaryOp OP, class T>
inline T unary_forward(T x, const UnaryParams& p) {
  if constexpr (OP == UnaryOp::neg) return -x;
  if constexpr (OP == UnaryOp::exp) return std::exp(x);
  if constexpr (OP == UnaryOp::log) return std::log(x);
  if constexpr (OP == UnaryOp::sqrt) return std::sqrt(x);
  if constexpr (OP == UnaryOp::rsqrt) return T(1) / std::sqrt(x);
  if constexpr (OP == UnaryOp::tanh) return std::tanh(x);
  if constexpr (OP == UnaryOp::sigmoid) return sigmoid_of(x);
  if constexpr (OP == UnaryOp::relu) return x > 0 ? x : T(0);
  // 0.5 x (1 + tanh(u)) written as x sigmoid(2u), and 0.5 x (1 + erf(x / sqrt 2)) as
  // 0.5 x erfc(-x / sqrt 2): the same functions, without the cancellation in 1 + tanh and 1 + erf
  // that loses all relative accuracy for large negative x.
  if constexpr (OP == UnaryOp::gelu_tanh)
    return x * sigmoid_of(T(2 * kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x));
  if constexpr (OP == UnaryOp::gelu_erf) return T(0.5) * x * std::erfc(-x * T(M_SQRT1_2));
  if constexpr (OP == UnaryOp::silu) return x * sigmoid_of(x);
  // expm1, not exp - 1: no cancellation for x near 0.
  if constexpr (OP == UnaryOp::elu) return x > 0 ? x : T(p.a) * std::expm1(x);
  if constexpr (OP == UnaryOp::softplus) {
    T bx = T(p.a) * x;  // above the threshold softplus is the identity (as in PyTorch)
    return bx > T(p.b) ? x : std::log1p(std::exp(bx)) / T(p.a);
  }
  if constexpr (OP == UnaryOp::clamp) return x < T(p.a) ? T(p.a) : (x > T(p.b) ? T(p.b) : x);
  if constexpr (OP == UnaryOp::pow) return std::pow(x, T(p.a));
  if constexpr (OP == UnaryOp::add_scalar) return x + T(p.a);
  if constexpr (OP == UnaryOp::mul_scalar) return x * T(p.a);
  if constexpr (OP == UnaryOp::abs) return std::abs(x);
}

// d op(x) / dx, given the input x and the output y = op(x).
template <UnaryOp OP, class T>
inline T unary_derivative(T x, T y, const UnaryParams& p) {
  if constexpr (OP == UnaryOp::neg) return T(-1);
  if constexpr (OP == UnaryOp::exp) return y;
  if constexpr (OP == UnaryOp::log) return T(1) / x;
  if constexpr (OP == UnaryOp::sqrt) return T(0.5) / y;
  if constexpr (OP == UnaryOp::rsqrt) return T(-0.5) * y * y * y;
  // tanh, sigmoid and elu differentiate x rather than reuse y: 1 - y^2, y (1 - y) and y + alpha
  // cancel where the function saturates, and the gradient there would be rounding noise.
  if constexpr (OP == UnaryOp::tanh) return tanh_slope_of(x);
  if constexpr (OP == UnaryOp::sigmoid) return sigmoid_slope_of(x);
  if constexpr (OP == UnaryOp::relu) return x > 0 ? T(1) : T(0);
  if constexpr (OP == UnaryOp::gelu_tanh) {
    // With v = 2u: d/dx [x sigmoid(v)] = sigmoid(v) + x sigmoid'(v) dv/dx.
    const T v = T(2 * kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
    const T dv = T(2 * kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
    return sigmoid_of(v) + (x * sigmoid_slope_of(v)) * dv;
  }
  if constexpr (OP == UnaryOp::gelu_erf) {
    const T cdf = T(0.5) * std::erfc(-x * T(M_SQRT1_2));
    const T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);  // 1 / sqrt(2 pi)
    return cdf + x * pdf;
  }
  // s (1 + x (1 - s)) = s + x s (1 - s).
  if constexpr (OP == UnaryOp::silu) return sigmoid_of(x) + x * sigmoid_slope_of(x);
  if constexpr (OP == UnaryOp::elu) return x > 0 ? T(1) : T(p.a) * std::exp(x);
  if constexpr (OP == UnaryOp::softplus) {
    T bx = T(p.a) * x;
    return bx > T(p.b) ? T(1) : sigmoid_of(bx);
  }
  if constexpr (OP == UnaryOp::clamp) return (x >= T(p.a) && x <= T(p.b)) ? T(1) : T(0);
  if constexpr (OP == UnaryOp::pow) return T(p.a) * std::pow(x, T(p.a - 1));
  if constexpr (OP == UnaryOp::add_scalar) return T(1);
  if constexpr (OP == UnaryOp::mul_scalar) return T(p.a);
  if constexpr (OP == UnaryOp::abs) return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
}

template <BinaryOp OP, class T>
inline T binary_forward(T a, T b) {
  if constexpr (OP == BinaryOp::add) return a + b;
  if constexpr (OP == BinaryOp::sub) return a - b;
  if constexpr (OP == BinaryOp::mul) return a * b;
  if constexpr (OP == BinaryOp::div) return a / b;
  if constexpr (OP == BinaryOp::eq) return a == b ? T(1) : T(0);
  if constexpr (OP == BinaryOp::lt) return a < b ? T(1) : T(0);
  if constexpr (OP == BinaryOp::gt) return a > b ? T(1) : T(0);
}

}  // namespace rill

// RILL_SWITCH_UNARY(op, OP, body): runs body with OP a compile-time UnaryOp.
#define RILL_UNARY_CASE(NAME, ...)                         \
  case ::rill::UnaryOp::NAME: {                            \
    constexpr ::rill::UnaryOp OP_ = ::rill::UnaryOp::NAME; \
    __VA_ARGS__;                                           \
    break;                                                 \
  }
#define RILL_SWITCH_UNARY(op, OP, ...)                                \
  switch (op) {                                                       \
    RILL_UNARY_CASE(neg, constexpr auto OP = OP_; __VA_ARGS__)        \
    RILL_UNARY_CASE(exp, constexpr auto OP = OP_; __VA_ARGS__)        \
    RILL_UNARY_CASE(log, constexpr auto OP = OP_; __VA_ARGS__)        \
    RILL_UNARY_CASE(sqrt, constexpr auto OP = OP_; __VA_ARGS__)       \
    RILL_UNARY_CASE(rsqrt, constexpr auto OP = OP_; __VA_ARGS__)      \
    RILL_UNARY_CASE(tanh, constexpr auto OP = OP_; __VA_ARGS__)       \
    RILL_UNARY_CASE(sigmoid, constexpr auto OP = OP_; __VA_ARGS__)    \
    RILL_UNARY_CASE(relu, constexpr auto OP = OP_; __VA_ARGS__)       \
    RILL_UNARY_CASE(gelu_tanh, constexpr auto OP = OP_; __VA_ARGS__)  \
    RILL_UNARY_CASE(gelu_erf, constexpr auto OP = OP_; __VA_ARGS__)   \
    RILL_UNARY_CASE(silu, constexpr auto OP = OP_; __VA_ARGS__)       \
    RILL_UNARY_CASE(elu, constexpr auto OP = OP_; __VA_ARGS__)        \
    RILL_UNARY_CASE(softplus, constexpr auto OP = OP_; __VA_ARGS__)   \
    RILL_UNARY_CASE(clamp, constexpr auto OP = OP_; __VA_ARGS__)      \
    RILL_UNARY_CASE(pow, constexpr auto OP = OP_; __VA_ARGS__)        \
    RILL_UNARY_CASE(add_scalar, constexpr auto OP = OP_; __VA_ARGS__) \
    RILL_UNARY_CASE(mul_scalar, constexpr auto OP = OP_; __VA_ARGS__) \
    RILL_UNARY_CASE(abs, constexpr auto OP = OP_; __VA_ARGS__)        \
  }

#define RILL_BINARY_CASE(NAME, ...)                          \
  case ::rill::BinaryOp::NAME: {                             \
    constexpr ::rill::BinaryOp OP_ = ::rill::BinaryOp::NAME; \
    __VA_ARGS__;                                             \
    break;                                                   \
  }
#define RILL_SWITCH_BINARY(op, OP, ...)                         \
  switch (op) {                                                 \
    RILL_BINARY_CASE(add, constexpr auto OP = OP_; __VA_ARGS__) \
    RILL_BINARY_CASE(sub, constexpr auto OP = OP_; __VA_ARGS__) \
    RILL_BINARY_CASE(mul, constexpr auto OP = OP_; __VA_ARGS__) \
    RILL_BINARY_CASE(div, constexpr auto OP = OP_; __VA_ARGS__) \
    RILL_BINARY_CASE(eq, constexpr auto OP = OP_; __VA_ARGS__)  \
    RILL_BINARY_CASE(lt, constexpr auto OP = OP_; __VA_ARGS__)  \
    RILL_BINARY_CASE(gt, constexpr auto OP = OP_; __VA_ARGS__)  \
  }
