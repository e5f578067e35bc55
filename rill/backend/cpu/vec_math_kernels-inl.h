// Kernel bodies of vec_math, written once against a vector traits type S (T, V, W, loads and
// stores, arithmetic, compares, libmvec's functions) and compiled once per ISA:
// vec_math_avx2.cpp and vec_math_avx512.cpp each include this file inside their own anonymous
// namespace, after `#pragma GCC target`, so every function here is built for that ISA and none
// is shared between the two object files. No include guard and no includes on purpose.
//
// The formulas mirror elementwise_math.h (the ref backend's) term by term, so that the two
// backends differ only by libmvec's rounding (up to 4 ulp) against libm's, not by algebra.

template <class S>
struct Kernels {
  using T = typename S::T;
  using V = typename S::V;
  static constexpr int64_t W = S::W;

  [[gnu::always_inline]] static V c(double v) { return S::set1(static_cast<T>(v)); }

  // libmvec computes a whole vector, then calls scalar libm for every lane it flags as special
  // (over- and underflow, infinities, NaN): measured here, exp of a vector of -inf costs 27x a
  // normal one, and one -inf lane in 16 makes the average vector 5x slower. -inf is common
  // here (masked logits, exp(-|x|) far in the tails), so lanes whose exp is exactly 0 (x below
  // ln of half the smallest denormal) get 0 without being passed on; expm1 likewise gives -1
  // where exp(x) is below half an ulp of 1. NaN still goes through (and propagates).
  [[gnu::always_inline]] static V exp(V x) {
    const auto zero = S::lt(x, c(S::kExpZeroBelow));
    return S::select(zero, S::zero(), S::exp(S::select(zero, S::zero(), x)));
  }
  [[gnu::always_inline]] static V expm1(V x) {
    const auto minus_one = S::lt(x, c(S::kExpm1MinusOneBelow));
    return S::select(minus_one, c(-1), S::expm1(S::select(minus_one, S::zero(), x)));
  }

  // --- forward ops and derivatives on one vector -----------------------------------------------

  // sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e) with e = exp(-|x|), which never overflows (one
  // division serves both signs); NaN stays NaN, as exp(NaN) is NaN.
  [[gnu::always_inline]] static V sigmoid(V x) {
    const V e = exp(S::neg(S::abs(x)));
    return S::div(S::select(S::ge(x, S::zero()), c(1), e), S::add(c(1), e));
  }
  // sigmoid(x) and its slope sigmoid(x) (1 - sigmoid(x)) = e / (1 + e)^2, from one exp: the
  // slope has no cancellation in 1 - sigmoid, so it keeps its relative accuracy in the tails.
  [[gnu::always_inline]] static void sigmoid_and_slope(V x, V& s, V& slope) {
    const V e = exp(S::neg(S::abs(x)));
    const V d = S::add(c(1), e);
    s = S::div(S::select(S::ge(x, S::zero()), c(1), e), d);
    slope = S::div(e, S::mul(d, d));
  }
  // tanh'(x) = 4 e / (1 + e)^2, e = exp(-2|x|).
  [[gnu::always_inline]] static V tanh_derivative(V x) {
    const V e = exp(S::mul(c(-2), S::abs(x)));
    const V d = S::add(c(1), e);
    return S::div(S::mul(c(4), e), S::mul(d, d));
  }
  // gelu_tanh = x sigmoid(v), v = 2 sqrt(2/pi) (x + 0.044715 x^3) (= 0.5 x (1 + tanh(v / 2))).
  [[gnu::always_inline]] static V gelu_tanh_arg(V x) {
    return S::mul(c(2 * kSqrt2OverPi), S::add(x, S::mul(S::mul(S::mul(c(kGeluCubic), x), x), x)));
  }
  [[gnu::always_inline]] static V gelu_tanh(V x) { return S::mul(x, sigmoid(gelu_tanh_arg(x))); }
  // sigmoid(v) + x sigmoid'(v) dv/dx.
  [[gnu::always_inline]] static V gelu_tanh_derivative(V x) {
    const V dv = S::mul(c(2 * kSqrt2OverPi), S::add(c(1), S::mul(S::mul(c(3 * kGeluCubic), x), x)));
    V s, slope;
    sigmoid_and_slope(gelu_tanh_arg(x), s, slope);
    return S::add(s, S::mul(S::mul(x, slope), dv));
  }
  // gelu_erf = 0.5 x erfc(-x / sqrt 2) (= 0.5 x (1 + erf(x / sqrt 2)) without its cancellation).
  [[gnu::always_inline]] static V gelu_erf(V x) {
    return S::mul(S::mul(c(0.5), x), S::erfc(S::mul(S::neg(x), c(M_SQRT1_2))));
  }
  [[gnu::always_inline]] static V gelu_erf_derivative(V x) {
    const V cdf = S::mul(c(0.5), S::erfc(S::mul(S::neg(x), c(M_SQRT1_2))));
    const V pdf = S::mul(exp(S::mul(S::mul(c(-0.5), x), x)), c(0.39894228040143267794));
    return S::add(cdf, S::mul(x, pdf));
  }
  // s (1 + x (1 - s)) = s + x s (1 - s).
  [[gnu::always_inline]] static V silu_derivative(V x) {
    V s, slope;
    sigmoid_and_slope(x, s, slope);
    return S::add(s, S::mul(x, slope));
  }
  [[gnu::always_inline]] static V elu(V x, V alpha) {
    return S::select(S::gt(x, S::zero()), x, S::mul(alpha, expm1(x)));
  }
  [[gnu::always_inline]] static V elu_derivative(V x, V alpha) {
    return S::select(S::gt(x, S::zero()), c(1), S::mul(alpha, exp(x)));
  }
  // Above the threshold softplus is the identity; below, exp(beta x) stays finite. Where
  // e = exp(beta x) < eps / 4, log1p(e) = e (1 - e / 2 + ...) rounds to e itself: taking e there
  // is exact, and keeps tiny and denormal e away from log1p's slow special-lane path.
  [[gnu::always_inline]] static V softplus(V x, V beta, V threshold) {
    const V bx = S::mul(beta, x);
    const V e = exp(bx);
    const V l = S::select(S::lt(e, c(__builtin_ldexp(1.0, -S::kMantissaBits - 2))), e, S::log1p(e));
    return S::select(S::gt(bx, threshold), x, S::div(l, beta));
  }
  [[gnu::always_inline]] static V softplus_derivative(V x, V beta, V threshold) {
    const V bx = S::mul(beta, x);
    return S::select(S::gt(bx, threshold), c(1), sigmoid(bx));
  }

  // --- loops -----------------------------------------------------------------------------------

  // y = f(x) over n elements, two vectors per step (two independent library calls in flight), the
  // tail through a partial load and store.
  template <class F>
  [[gnu::always_inline]] static void map(const T* x, T* y, int64_t n, F f) {
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      const V a = f(S::load(x + i)), b = f(S::load(x + i + W));
      S::store(y + i, a);
      S::store(y + i + W, b);
    }
    for (; i + W <= n; i += W) S::store(y + i, f(S::load(x + i)));
    if (i < n) S::store_partial(y + i, f(S::load_partial(x + i, n - i, T(1))), n - i);
  }

  // dx = g * d(x) over n elements.
  template <class D>
  [[gnu::always_inline]] static void map_grad(const T* x, const T* g, T* dx, int64_t n, D d) {
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      const V a = S::mul(S::load(g + i), d(S::load(x + i)));
      const V b = S::mul(S::load(g + i + W), d(S::load(x + i + W)));
      S::store(dx + i, a);
      S::store(dx + i + W, b);
    }
    for (; i + W <= n; i += W) S::store(dx + i, S::mul(S::load(g + i), d(S::load(x + i))));
    if (i < n) {
      const int64_t r = n - i;
      S::store_partial(
          dx + i, S::mul(S::load_partial(g + i, r, T(0)), d(S::load_partial(x + i, r, T(1)))), r);
    }
  }

  static void unary(UnaryOp op, const UnaryParams& p, const T* x, T* y, int64_t n) {
    switch (op) {
      case UnaryOp::exp:
        return map(x, y, n, [](V v) { return exp(v); });
      case UnaryOp::log:
        return map(x, y, n, [](V v) { return S::log(v); });
      case UnaryOp::tanh:
        return map(x, y, n, [](V v) { return S::tanh(v); });
      case UnaryOp::sigmoid:
        return map(x, y, n, [](V v) { return sigmoid(v); });
      case UnaryOp::silu:
        return map(x, y, n, [](V v) { return S::mul(v, sigmoid(v)); });
      case UnaryOp::gelu_tanh:
        return map(x, y, n, [](V v) { return gelu_tanh(v); });
      case UnaryOp::gelu_erf:
        return map(x, y, n, [](V v) { return gelu_erf(v); });
      case UnaryOp::elu: {
        const V alpha = c(p.a);
        return map(x, y, n, [=](V v) { return elu(v, alpha); });
      }
      case UnaryOp::softplus: {
        const V beta = c(p.a), threshold = c(p.b);
        return map(x, y, n, [=](V v) { return softplus(v, beta, threshold); });
      }
      default:
        __builtin_trap();  // vec_has_unary said no: the caller must not come here
    }
  }

  static void unary_backward(UnaryOp op, const UnaryParams& p, const T* x, const T* g, T* dx,
                             int64_t n) {
    switch (op) {
      case UnaryOp::tanh:
        return map_grad(x, g, dx, n, [](V v) { return tanh_derivative(v); });
      case UnaryOp::sigmoid:
        return map_grad(x, g, dx, n, [](V v) {
          V s, slope;
          sigmoid_and_slope(v, s, slope);
          return slope;
        });
      case UnaryOp::elu: {
        const V alpha = c(p.a);
        return map_grad(x, g, dx, n, [=](V v) { return elu_derivative(v, alpha); });
      }
      case UnaryOp::silu:
        return map_grad(x, g, dx, n, [](V v) { return silu_derivative(v); });
      case UnaryOp::gelu_tanh:
        return map_grad(x, g, dx, n, [](V v) { return gelu_tanh_derivative(v); });
      case UnaryOp::gelu_erf:
        return map_grad(x, g, dx, n, [](V v) { return gelu_erf_derivative(v); });
      case UnaryOp::softplus: {
        const V beta = c(p.a), threshold = c(p.b);
        return map_grad(x, g, dx, n, [=](V v) { return softplus_derivative(v, beta, threshold); });
      }
      default:
        __builtin_trap();
    }
  }

  // max over the row, NaN elements skipped as std::max(m, x) skips them (S::max(x, m) returns m
  // when x is NaN): a NaN then poisons the row through exp(NaN - m), as in ref. -inf when n == 0.
  static T row_max(const T* x, int64_t n) {
    const V lowest = S::set1(-__builtin_inf());
    V acc0 = lowest, acc1 = lowest;
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      acc0 = S::max(S::load(x + i), acc0);
      acc1 = S::max(S::load(x + i + W), acc1);
    }
    for (; i + W <= n; i += W) acc0 = S::max(S::load(x + i), acc0);
    if (i < n) acc1 = S::max(S::load_partial(x + i, n - i, -__builtin_inf()), acc1);
    return S::reduce_max(S::max(acc0, acc1));
  }

  // Pad lanes of the tail are -inf, so they add exp(-inf - m) = 0 (or NaN only where m is -inf
  // or NaN, and then every real lane is NaN already).
  static T row_sum_exp(const T* x, T m, int64_t n, T* e) {
    const V mv = S::set1(m);
    V acc0 = S::zero(), acc1 = S::zero();
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      const V a = exp(S::sub(S::load(x + i), mv));
      const V b = exp(S::sub(S::load(x + i + W), mv));
      if (e) {
        S::store(e + i, a);
        S::store(e + i + W, b);
      }
      acc0 = S::add(acc0, a);
      acc1 = S::add(acc1, b);
    }
    for (; i + W <= n; i += W) {
      const V a = exp(S::sub(S::load(x + i), mv));
      if (e) S::store(e + i, a);
      acc0 = S::add(acc0, a);
    }
    if (i < n) {
      const V a = exp(S::sub(S::load_partial(x + i, n - i, -__builtin_inf()), mv));
      if (e) S::store_partial(e + i, a, n - i);
      acc1 = S::add(acc1, a);
    }
    return S::reduce_add(S::add(acc0, acc1));
  }

  static void scaled_exp(const T* x, T a, T b, T scale, T* y, int64_t n) {
    const V av = S::set1(a), bv = S::set1(b), sv = S::set1(scale);
    map(x, y, n, [=](V v) { return S::mul(sv, exp(S::sub(S::sub(v, av), bv))); });
  }

  static void log_softmax_backward(const T* y, const T* g, T s, T* dx, int64_t n) {
    const V sv = S::set1(s);
    int64_t i = 0;
    for (; i + W <= n; i += W)
      S::store(dx + i, S::sub(S::load(g + i), S::mul(exp(S::load(y + i)), sv)));
    if (i < n) {
      const int64_t r = n - i;
      const V gv = S::load_partial(g + i, r, T(0)), yv = S::load_partial(y + i, r, T(0));
      S::store_partial(dx + i, S::sub(gv, S::mul(exp(yv), sv)), r);
    }
  }

  static constexpr VecTable<T> table() {
    return {&unary, &unary_backward, &row_max, &row_sum_exp, &scaled_exp, &log_softmax_backward};
  }
};
