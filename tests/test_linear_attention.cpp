// Causal linear attention as the gated-state op (scalar decay): the recurrent and chunked cpu
// forms against each other, the ref oracle and a per-step recurrence written here with plain ops
// (out, s_final and the gradients of q, k, v, s0 and the log-decay g under a loss through both
// outputs), without decay, with a full [B,H,T] and a broadcast [1,H,1] decay, g = 0 and a strong
// decay (g ~ -20, cumulative decays underflowing inside a chunk), and a constant decay whose
// gradient is not asked for; the step form against the recurrent form token by token (ref and
// cpu step kernels); f64 gradient checks through every backend and form;
// segmentation invariance, causality, the O(T) memory of both forms, bitwise determinism across
// thread counts, the non-causal form, and the errors.
//
// Shapes: B batch, H heads, T tokens, Dk key/query features, Dv value size.
#include <omp.h>

#include <cmath>

#include "rill/autograd/grad_mode.h"
#include "rill/core/allocator.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/linear_attention.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

// One way of computing the op: the ref oracle, or a cpu form (with its chunk length).
struct Impl {
  Backend backend;
  LinearAttentionForm form;
  int64_t chunk;
  std::string name() const {
    if (backend == Backend::ref) return "ref";
    if (form == LinearAttentionForm::recurrent) return "recurrent";
    return fmt::format("chunked/{}", chunk);
  }
};
const Impl kRef{Backend::ref, LinearAttentionForm::chunked, 64};
const Impl kRecurrent{Backend::cpu, LinearAttentionForm::recurrent, 64};
Impl chunked(int64_t c) { return {Backend::cpu, LinearAttentionForm::chunked, c}; }

struct Dims {
  int64_t b, h, t, dk, dv;
  std::string str() const { return fmt::format("B{} H{} T{} Dk{} Dv{}", b, h, t, dk, dv); }
};

// The log-decay given: none; a full [B,H,T] gate; a fixed per-head [1,H,1] decay; g = 0 (must
// equal no decay); a strong decay, g ~ -20 (gamma ~ 2e-9: the cumulative decay underflows to 0
// within a few tokens, f32 and f64).
enum class Decay { none, full, head, zero, strong };
const char* decay_name(Decay d) {
  switch (d) {
    case Decay::none:
      return "no decay";
    case Decay::full:
      return "g [B,H,T]";
    case Decay::head:
      return "g [1,H,1]";
    case Decay::zero:
      return "g = 0";
    case Decay::strong:
      return "g ~ -20";
  }
  return "?";
}

struct Inputs {
  Tensor q, k, v, s0, g;  // s0 and g may be undefined
};

Inputs make_inputs(const Dims& d, DType dt, uint64_t seed, bool with_s0, Decay decay = Decay::none,
                   bool strided = false) {
  auto gen = [&](const Shape& s, uint64_t sd) {
    return strided ? random_strided(s, dt, sd) : random(s, dt, sd);
  };
  auto uniform = [&](const Shape& s, uint64_t sd, double lo, double hi) {
    return strided ? random_uniform_strided(s, dt, sd, lo, hi) : random_uniform(s, dt, sd, lo, hi);
  };
  Inputs in;
  in.q = gen({d.b, d.h, d.t, d.dk}, seed);
  in.k = gen({d.b, d.h, d.t, d.dk}, seed + 1);
  in.v = gen({d.b, d.h, d.t, d.dv}, seed + 2);
  if (with_s0) in.s0 = gen({d.b, d.h, d.dk, d.dv}, seed + 3);
  // Decays kept away from 0 (central differences step by 1e-6 and g must stay <= 0), and wide
  // enough that a chunk's cumulative decay spans many orders of magnitude.
  switch (decay) {
    case Decay::none:
      break;
    case Decay::full:
      in.g = uniform({d.b, d.h, d.t}, seed + 4, -1.5, -0.01);
      break;
    case Decay::head:
      in.g = uniform({1, d.h, 1}, seed + 4, -0.7, -0.02);
      break;
    case Decay::zero:
      in.g = Tensor::zeros({d.b, d.h, d.t}, dt);
      break;
    case Decay::strong:
      in.g = uniform({d.b, d.h, d.t}, seed + 4, -21, -19);
      break;
  }
  return in;
}

// out, s_final, then dq, dk, dv, ds0 (undefined without s0), dg (undefined without g).
struct Result {
  Tensor out, sf, dq, dk, dv, ds0, dg;
};

Tensor leaf(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor l = t.detach();
  l.set_requires_grad(true);
  return l;
}

// The loss flows through both outputs: sum(out * R1) + sum(s_final * R2), R fixed by the shapes.
Tensor two_output_loss(const Tensor& out, const Tensor& sf) {
  return add(sum(mul(out, random(out.shape(), out.dtype(), 1001))),
             sum(mul(sf, random(sf.shape(), sf.dtype(), 1002))));
}

Tensor grad_of(const Tensor& t) { return t.defined() ? t.grad() : Tensor(); }

// g_grad false: the decay is a constant (a fixed RetNet decay, say), so no dg is asked for and
// the kernels take their cheaper path.
Result run(const Impl& impl, const Inputs& in, bool g_grad = true) {
  BackendGuard guard(impl.backend);
  Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0);
  Tensor g = g_grad ? leaf(in.g) : in.g;
  auto [out, sf] = causal_linear_attention(q, k, v, s0, {g}, impl.form, impl.chunk);
  two_output_loss(out, sf).backward();
  return {out.detach(),
          sf.detach(),
          q.grad(),
          k.grad(),
          v.grad(),
          grad_of(s0),
          g_grad ? grad_of(g) : Tensor()};
}

// The recurrence as written, one token at a time from plain differentiable ops (under the ref
// backend), its gradients from the tape: S = exp(g_t) S + k_t^T v_t, out_t = q_t S.
Result run_naive(const Inputs& in) {
  BackendGuard guard(Backend::ref);
  Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0), g = leaf(in.g);
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), dk = q.size(3), dv = v.size(3);
  Tensor s = s0.defined() ? s0 : Tensor::zeros({b, h, dk, dv}, q.dtype());
  Tensor gfull = g.defined() ? g.expand({b, h, t}) : Tensor();
  std::vector<Tensor> outs;
  for (int64_t i = 0; i < t; ++i) {
    Tensor qi = q.slice(2, i, i + 1), ki = k.slice(2, i, i + 1), vi = v.slice(2, i, i + 1);
    if (g.defined()) s = mul(exp(gfull.slice(2, i, i + 1).unsqueeze(3)), s);  // [B,H,1,1]
    s = add(s, matmul(ki.transpose(2, 3), vi));
    outs.push_back(matmul(qi, s));  // [B,H,1,Dv]
  }
  Tensor out = concat(outs, 2);
  two_output_loss(out, s).backward();
  return {out.detach(), s.detach(), q.grad(), k.grad(), v.grad(), grad_of(s0), grad_of(g)};
}

void expect_close(const Result& a, const Result& e, const std::string& what) {
  EXPECT_TRUE(all_close(a.out, e.out)) << what << ": out";
  EXPECT_TRUE(all_close(a.sf, e.sf)) << what << ": s_final";
  EXPECT_TRUE(all_close(a.dq, e.dq)) << what << ": dq";
  EXPECT_TRUE(all_close(a.dk, e.dk)) << what << ": dk";
  EXPECT_TRUE(all_close(a.dv, e.dv)) << what << ": dv";
  ASSERT_EQ(a.ds0.defined(), e.ds0.defined()) << what;
  if (e.ds0.defined()) {
    EXPECT_TRUE(all_close(a.ds0, e.ds0)) << what << ": ds0";
  }
  ASSERT_EQ(a.dg.defined(), e.dg.defined()) << what;
  if (e.dg.defined()) {
    EXPECT_TRUE(all_close(a.dg, e.dg)) << what << ": dg";
  }
}

std::vector<Tensor> all_of(const Result& r) {
  std::vector<Tensor> v = {r.out, r.sf, r.dq, r.dk, r.dv};
  for (const Tensor& t : {r.ds0, r.dg})
    if (t.defined()) v.push_back(t);
  return v;
}

// T = 1, T not a multiple of any chunk, Dv = Dk + 1, odd sizes, B*H = 1 and > 2, Dk wider than
// one vector group, Dv narrower than one vector, and a long sequence (f32 error growing with T).
const std::vector<Dims> kDims = {{1, 1, 1, 4, 4},     {1, 1, 7, 8, 9},     {2, 3, 37, 16, 17},
                                 {1, 2, 130, 64, 65}, {2, 2, 100, 5, 3},   {1, 1, 64, 7, 1},
                                 {1, 3, 50, 40, 72},  {1, 1, 20, 130, 33}, {1, 1, 1000, 8, 8}};
const std::vector<int64_t> kChunks = {1, 16, 64, 1000};

std::vector<Impl> cpu_forms() {
  std::vector<Impl> impls = {kRecurrent};
  for (int64_t c : kChunks) impls.push_back(chunked(c));
  return impls;
}

}  // namespace

// Every cpu form against the ref oracle and against the recurrent form, for every decay kind.
TEST(LinearAttention, FormsMatchRef) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : kDims)
      for (Decay decay : {Decay::none, Decay::full, Decay::head})
        for (bool with_s0 : {true, false}) {
          const Inputs in = make_inputs(d, dt, 11, with_s0, decay);
          const Result ref = run(kRef, in);
          Result first;
          for (const Impl& impl : cpu_forms()) {
            const std::string what =
                fmt::format("{} vs ref, {} {} {}{}", impl.name(), dtype_name(dt), d.str(),
                            decay_name(decay), with_s0 ? " s0" : "");
            const Result r = run(impl, in);
            expect_close(r, ref, what);
            if (first.out.defined())
              expect_close(r, first, what + " vs recurrent");
            else
              first = r;
          }
        }
}

// The ref oracle and every cpu form against the recurrence written in this file (gradients from
// the tape, so the decay's gradient is checked against the chain rule through exp, not against
// any closed form).
TEST(LinearAttention, MatchesPerStepRecurrence) {
  const std::vector<Dims> dims = {{1, 1, 1, 4, 4}, {2, 3, 37, 16, 17}, {1, 2, 70, 9, 65}};
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : dims)
      for (Decay decay : {Decay::none, Decay::full, Decay::head, Decay::strong})
        for (bool with_s0 : {true, false}) {
          const Inputs in = make_inputs(d, dt, 31, with_s0, decay);
          const Result naive = run_naive(in);
          std::vector<Impl> impls = {kRef, kRecurrent, chunked(1), chunked(16), chunked(64)};
          for (const Impl& impl : impls)
            expect_close(
                run(impl, in), naive,
                fmt::format("{} vs per-step recurrence, {} {} {}{}", impl.name(), dtype_name(dt),
                            d.str(), decay_name(decay), with_s0 ? " s0" : ""));
        }
}

// A decay that is a constant (no gradient wanted): the recurrent form then reads dq and dk out
// after each token's write, a different kernel path from the one that also gives dg.
TEST(LinearAttention, DecayWithoutItsGradient) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : {Dims{1, 1, 1, 4, 4}, Dims{2, 3, 37, 16, 17}, Dims{1, 2, 130, 64, 65}})
      for (Decay decay : {Decay::full, Decay::head, Decay::strong}) {
        const Inputs in = make_inputs(d, dt, 61, true, decay);
        const Result ref = run(kRef, in, false);
        for (const Impl& impl : cpu_forms())
          expect_close(run(impl, in, false), ref,
                       fmt::format("{} constant {}, {} {}", impl.name(), decay_name(decay),
                                   dtype_name(dt), d.str()));
      }
}

// g = 0 is no decay: outputs, state and the gradients of q, k, v, s0 equal the undecayed op's
// (different kernels compute them), and dg still matches the oracle.
TEST(LinearAttention, ZeroDecayIsNoDecay) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : {Dims{2, 3, 37, 16, 17}, Dims{1, 2, 130, 64, 65}}) {
      const Inputs with_g = make_inputs(d, dt, 41, true, Decay::zero);
      Inputs without = with_g;
      without.g = Tensor();
      const Result ref = run(kRef, with_g);
      for (const Impl& impl : cpu_forms()) {
        const std::string what =
            fmt::format("{} g = 0 vs no decay, {} {}", impl.name(), dtype_name(dt), d.str());
        Result r = run(impl, with_g);
        EXPECT_TRUE(all_close(r.dg, ref.dg)) << what << ": dg vs ref";
        r.dg = Tensor();
        expect_close(r, run(impl, without), what);
      }
    }
}

// g ~ -20: gamma ~ 2e-9, so a chunk's cumulative decay underflows to 0 (in f64 too after 36
// tokens). Nothing may overflow (exp(-b) would be inf) or turn NaN, and every result, dg (tiny:
// it scales with gamma) included, still matches the oracle to the dtype's tolerance.
TEST(LinearAttention, StrongDecay) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : {Dims{1, 2, 130, 16, 17}, Dims{2, 1, 300, 8, 9}})
      for (bool with_s0 : {true, false}) {
        const Inputs in = make_inputs(d, dt, 43, with_s0, Decay::strong);
        const Result ref = run(kRef, in);
        for (const Impl& impl : cpu_forms()) {
          const std::string what = fmt::format("{} strong decay, {} {}{}", impl.name(),
                                               dtype_name(dt), d.str(), with_s0 ? " s0" : "");
          const Result r = run(impl, in);
          for (const Tensor& t : all_of(r))
            for (double x : t.to_vector<double>()) ASSERT_TRUE(std::isfinite(x)) << what;
          expect_close(r, ref, what);
        }
      }
}

// Gradients reaching only one of the two outputs (the other gets zeros from the engine).
TEST(LinearAttention, GradientThroughOneOutput) {
  const Dims d{2, 1, 70, 8, 9};
  for (Decay decay : {Decay::none, Decay::full, Decay::head}) {
    const Inputs in = make_inputs(d, DType::f64, 25, true, decay);
    for (int which : {0, 1}) {
      std::vector<Tensor> grads[4];
      const Impl impls[4] = {kRef, kRecurrent, chunked(16), chunked(64)};
      for (int i = 0; i < 4; ++i) {
        BackendGuard guard(impls[i].backend);
        Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0), g = leaf(in.g);
        auto [out, sf] = causal_linear_attention(q, k, v, s0, {g}, impls[i].form, impls[i].chunk);
        Tensor y = which == 0 ? out : sf;
        sum(mul(y, random(y.shape(), DType::f64, 26))).backward();
        grads[i] = {q.grad(), k.grad(), v.grad(), s0.grad()};
        if (g.defined()) grads[i].push_back(g.grad());
      }
      for (int i = 1; i < 4; ++i)
        for (size_t j = 0; j < grads[0].size(); ++j)
          EXPECT_TRUE(all_close(grads[i][j], grads[0][j]))
              << impls[i].name() << (which == 0 ? " out only" : " s_final only") << ", "
              << decay_name(decay) << ", input " << j;
    }
  }
}

TEST(LinearAttention, NoTokens) {
  for (Decay decay : {Decay::none, Decay::full})
    for (const Impl& impl : {kRef, kRecurrent, chunked(16)}) {
      const Inputs in = make_inputs({2, 1, 0, 4, 5}, DType::f64, 12, true, decay);
      const Result r = run(impl, in);
      EXPECT_EQ(r.out.shape(), (Shape{2, 1, 0, 5})) << impl.name();
      EXPECT_TRUE(bitwise_equal(r.sf, in.s0)) << impl.name();
      EXPECT_TRUE(bitwise_equal(r.ds0, random({2, 1, 4, 5}, DType::f64, 1002))) << impl.name();
      if (decay != Decay::none) {
        EXPECT_EQ(r.dg.shape(), (Shape{2, 1, 0})) << impl.name();
      }
    }
}

TEST(LinearAttention, StridedInputs) {
  const Dims d{2, 2, 45, 16, 17};
  for (DType dt : {DType::f32, DType::f64})
    for (Decay decay : {Decay::none, Decay::full}) {
      const Inputs strided = make_inputs(d, dt, 13, true, decay, true);
      ASSERT_FALSE(strided.q.is_contiguous());
      const Inputs dense{strided.q.contiguous(), strided.k.contiguous(), strided.v.contiguous(),
                         strided.s0.contiguous(),
                         strided.g.defined() ? strided.g.contiguous() : Tensor()};
      const Result ref = run(kRef, dense);
      for (const Impl& impl : {kRef, kRecurrent, chunked(16), chunked(64)})
        expect_close(run(impl, strided), ref,
                     fmt::format("{} strided, {} {} {}", impl.name(), dtype_name(dt), d.str(),
                                 decay_name(decay)));
    }
}

// Central differences in f64 through every backend and form, the gradcheck running under the
// form's backend; with a full and a broadcast decay, dg is checked against differences too.
TEST(LinearAttention, Gradcheck) {
  for (const Dims& d : {Dims{1, 2, 5, 3, 4}, Dims{2, 1, 6, 4, 5}})
    for (Decay decay : {Decay::none, Decay::full, Decay::head})
      for (const Impl& impl : {kRef, kRecurrent, chunked(1), chunked(4), chunked(16)}) {
        const Inputs in = make_inputs(d, DType::f64, 14, true, decay);
        std::vector<Tensor> inputs = {in.q, in.k, in.v, in.s0};
        if (in.g.defined()) inputs.push_back(in.g);
        gradcheck(
            [&](const std::vector<Tensor>& x) {
              const Tensor g = x.size() > 4 ? x[4] : Tensor();
              auto [out, sf] =
                  causal_linear_attention(x[0], x[1], x[2], x[3], {g}, impl.form, impl.chunk);
              return two_output_loss(out, sf);
            },
            inputs, fmt::format("{} {} {}", impl.name(), d.str(), decay_name(decay)), kGradcheckTol,
            impl.backend);
      }
}

// T tokens in two pieces, s_final of the first carried as s0 of the second, equals the whole:
// outputs, final state and every gradient (through the carried state too).
TEST(LinearAttention, SegmentationInvariance) {
  const Dims d{1, 2, 150, 16, 17};
  for (DType dt : {DType::f32, DType::f64})
    for (Decay decay : {Decay::none, Decay::full, Decay::head})
      for (const Impl& impl : {kRef, kRecurrent, chunked(16), chunked(64)})
        for (int64_t split : {1, 64, 77, 149}) {
          const std::string what = fmt::format("{} {} {} split at {}", impl.name(), dtype_name(dt),
                                               decay_name(decay), split);
          const Inputs in = make_inputs(d, dt, 15, true, decay);
          const Result whole = run(impl, in);
          BackendGuard guard(impl.backend);
          Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0), g = leaf(in.g);
          auto piece = [&](const Tensor& x, int64_t a, int64_t b) {
            // A [1,H,1] decay is the same for every piece.
            return x.defined() && x.size(2) == d.t ? x.slice(2, a, b) : x;
          };
          auto [out1, s1] =
              causal_linear_attention(piece(q, 0, split), piece(k, 0, split), piece(v, 0, split),
                                      s0, {piece(g, 0, split)}, impl.form, impl.chunk);
          auto [out2, s2] = causal_linear_attention(piece(q, split, d.t), piece(k, split, d.t),
                                                    piece(v, split, d.t), s1,
                                                    {piece(g, split, d.t)}, impl.form, impl.chunk);
          Tensor out = concat({out1, out2}, 2);
          two_output_loss(out, s2).backward();
          expect_close(
              {out.detach(), s2.detach(), q.grad(), k.grad(), v.grad(), s0.grad(), grad_of(g)},
              whole, what);
        }
}

// Changing tokens (and their decays) from t0 on leaves outputs before t0 bitwise unchanged, and
// a loss on those outputs alone gives exactly zero gradient to the later tokens.
TEST(LinearAttention, Causality) {
  const Dims d{1, 2, 90, 16, 17};
  const int64_t t0 = 37;
  for (Decay decay : {Decay::none, Decay::full})
    for (const Impl& impl : {kRef, kRecurrent, chunked(16), chunked(64)}) {
      const std::string what = fmt::format("{} {}", impl.name(), decay_name(decay));
      BackendGuard guard(impl.backend);
      const Inputs in = make_inputs(d, DType::f64, 16, true, decay);
      Inputs changed{in.q.clone(), in.k.clone(), in.v.clone(), in.s0,
                     in.g.defined() ? in.g.clone() : Tensor()};
      for (Tensor* t : {&changed.q, &changed.k, &changed.v})
        t->slice(2, t0, d.t).copy_(random(t->slice(2, t0, d.t).shape(), DType::f64, 17));
      if (changed.g.defined())
        changed.g.slice(2, t0, d.t)
            .copy_(random_uniform(changed.g.slice(2, t0, d.t).shape(), DType::f64, 18, -3, 0));
      Tensor a =
          causal_linear_attention(in.q, in.k, in.v, in.s0, {in.g}, impl.form, impl.chunk).first;
      Tensor b = causal_linear_attention(changed.q, changed.k, changed.v, changed.s0, {changed.g},
                                         impl.form, impl.chunk)
                     .first;
      EXPECT_TRUE(bitwise_equal(a.slice(2, 0, t0), b.slice(2, 0, t0))) << what;

      Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), g = leaf(in.g);
      Tensor out = causal_linear_attention(q, k, v, in.s0, {g}, impl.form, impl.chunk).first;
      sum(mul(out.slice(2, 0, t0), random({d.b, d.h, t0, d.dv}, DType::f64, 19))).backward();
      std::vector<const Tensor*> later = {&q, &k, &v};
      if (g.defined()) later.push_back(&g);
      for (const Tensor* gr : later) {
        Tensor future = gr->grad().slice(2, t0, d.t);
        EXPECT_TRUE(bitwise_equal(future, Tensor::zeros(future.shape(), DType::f64))) << what;
      }
    }
}

// Forward + backward at T = 4096 keeps no per-token state: the peak stays within a fixed multiple
// of the inputs' bytes, far below the T*Dk*Dv floats that storing every S_t would take.
TEST(LinearAttention, MemoryIsLinearInT) {
  const Dims d{1, 2, 4096, 64, 64};
  for (Decay decay : {Decay::none, Decay::full}) {
    const Inputs in = make_inputs(d, DType::f32, 19, true, decay);
    const size_t input_bytes = in.q.nbytes() + in.k.nbytes() + in.v.nbytes() + in.s0.nbytes();
    const size_t all_states = static_cast<size_t>(d.b * d.h * d.t * d.dk * d.dv) * sizeof(float);
    for (const Impl& impl : {kRecurrent, chunked(64)}) {
      Allocator& alloc = Allocator::instance();
      const size_t before = alloc.live_bytes();
      alloc.reset_peak();
      {
        const Result r = run(impl, in);
        EXPECT_TRUE(r.ds0.defined());
      }
      const size_t peak = alloc.peak_bytes() - before;
      EXPECT_LT(peak, 8 * input_bytes) << impl.name() << " " << decay_name(decay) << ": peak "
                                       << peak << " bytes, inputs " << input_bytes;
      EXPECT_LT(peak, all_states / 4) << impl.name() << " " << decay_name(decay);
    }
  }
}

// Bitwise identical results on 1, 2 and 3 threads, for every form, dtype and decay. With B*H = 1
// the recurrent form also splits the state's columns differently for different thread counts.
TEST(LinearAttention, ThreadCountDeterminism) {
  for (const Dims& d : {Dims{1, 3, 300, 64, 65}, Dims{1, 1, 400, 64, 65}})
    for (DType dt : {DType::f32, DType::f64})
      for (Decay decay : {Decay::none, Decay::full, Decay::head})
        for (const Impl& impl : {kRecurrent, chunked(16), chunked(64)}) {
          const Inputs in = make_inputs(d, dt, 20, true, decay);
          expect_thread_invariant(
              [&] { return all_of(run(impl, in)); },
              fmt::format("{} {} {} {}", impl.name(), dtype_name(dt), d.str(), decay_name(decay)));
        }
}

// The step form, token by token from s0, gives the recurrent form's outputs and final state, on
// both backends (the ref step kernel too), with and without decay; inputs are strided views.
TEST(LinearAttention, StepMatchesRecurrent) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : {Dims{2, 3, 20, 16, 17}, Dims{1, 2, 9, 64, 65}})
      for (Decay decay : {Decay::none, Decay::full, Decay::head})
        for (Backend backend : {Backend::ref, Backend::cpu}) {
          const std::string what = fmt::format("{} step, {} {} {}", backend_name(backend),
                                               dtype_name(dt), d.str(), decay_name(decay));
          const Inputs in = make_inputs(d, dt, 51, true, decay);
          BackendGuard guard(backend);
          NoGradGuard no_grad;
          auto [out, sf] = causal_linear_attention(in.q, in.k, in.v, in.s0, {in.g},
                                                   LinearAttentionForm::recurrent);
          Tensor s = in.s0.clone();
          for (int64_t t = 0; t < d.t; ++t) {
            // The step's decay is the op's with the T dim removed: [B,H] or [1,H].
            Tensor gt = in.g.defined() ? in.g.select(2, in.g.size(2) == 1 ? 0 : t) : Tensor();
            Tensor o = linear_attention_step(in.q.select(2, t), in.k.select(2, t),
                                             in.v.select(2, t), s, {gt});
            EXPECT_TRUE(all_close(o, out.select(2, t))) << what << ", token " << t;
          }
          EXPECT_TRUE(all_close(s, sf)) << what << ": state";
        }
}

TEST(LinearAttention, NonCausal) {
  const Dims d{2, 3, 21, 8, 9};
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard guard(b);
    const Inputs in = make_inputs(d, DType::f64, 21, true);
    // q_t^T (s0 + K^T V) is the causal form's final state read out by every query.
    Tensor sf = causal_linear_attention(in.q, in.k, in.v, in.s0).second;
    EXPECT_TRUE(all_close(linear_attention_noncausal(in.q, in.k, in.v, in.s0), matmul(in.q, sf)));
    Tensor sf0 = causal_linear_attention(in.q, in.k, in.v, Tensor()).second;
    EXPECT_TRUE(all_close(linear_attention_noncausal(in.q, in.k, in.v), matmul(in.q, sf0)));
  }
  const Inputs small = make_inputs({1, 2, 4, 3, 4}, DType::f64, 22, true);
  gradcheck(
      [](const std::vector<Tensor>& x) {
        return linear_attention_noncausal(x[0], x[1], x[2], x[3]);
      },
      {small.q, small.k, small.v, small.s0}, "noncausal");
  // Queries may outnumber the keys.
  Tensor q = random({1, 2, 6, 3}, DType::f64, 23);
  EXPECT_EQ(linear_attention_noncausal(q, small.k, small.v).shape(), (Shape{1, 2, 6, 4}));
}

TEST(LinearAttention, Errors) {
  const Inputs in = make_inputs({2, 3, 5, 4, 6}, DType::f32, 24, true, Decay::full);
  auto causal = [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                   int64_t chunk = 64, const Tensor& g = Tensor()) {
    return [=] { causal_linear_attention(q, k, v, s0, {g}, LinearAttentionForm::chunked, chunk); };
  };
  const std::string tag = "[linear_attention]";
  // Rank.
  expect_error(causal(in.q.select(0, 0), in.k, in.v, in.s0), {tag, "[3, 5, 4]"});
  expect_error(causal(in.q, in.k, in.v, in.s0.select(0, 0)), {tag, "[3, 4, 6]"});
  // B, H or T mismatched.
  expect_error(causal(in.q, in.k.slice(0, 0, 1), in.v, in.s0), {tag, "[1, 3, 5, 4]"});
  expect_error(causal(in.q, in.k, in.v.slice(1, 0, 2), in.s0), {tag, "[2, 2, 5, 6]"});
  expect_error(causal(in.q, in.k.slice(2, 0, 4), in.v.slice(2, 0, 4), in.s0),
               {tag, "[2, 3, 4, 4]"});
  // Dk of q vs k.
  expect_error(causal(in.q, in.k.slice(3, 0, 3), in.v, in.s0), {tag, "Dk", "[2, 3, 5, 3]"});
  // s0 shape.
  expect_error(causal(in.q, in.k, in.v, in.s0.slice(3, 0, 5)), {tag, "s0", "[2, 3, 4, 5]"});
  // Dtypes.
  expect_error(causal(in.q, in.k.to(DType::f64), in.v, in.s0), {tag, "f64"});
  expect_error(causal(in.q, in.k, in.v, in.s0.to(DType::f64)), {tag, "f64"});
  expect_error(causal(in.q.to(DType::i64), in.k.to(DType::i64), in.v.to(DType::i64), Tensor()),
               {tag, "i64"});
  // Chunk.
  expect_error(causal(in.q, in.k, in.v, in.s0, 0), {tag, "chunk", "0", "[2, 3, 5, 4]"});
  expect_error(causal(in.q, in.k, in.v, in.s0, -3), {tag, "chunk", "-3"});
  // The log-decay: shape (it must broadcast to [B,H,T]), dtype, sign.
  expect_error(causal(in.q, in.k, in.v, in.s0, 64, in.g.slice(2, 0, 4)),
               {tag, "g", "[B,H,T]", "[2, 3, 5]", "[2, 3, 4]"});
  expect_error(causal(in.q, in.k, in.v, in.s0, 64, in.g.unsqueeze(0)), {tag, "[1, 2, 3, 5]"});
  expect_error(causal(in.q, in.k, in.v, in.s0, 64, in.g.to(DType::f64)), {tag, "f64"});
  Tensor positive = in.g.clone();
  positive.slice(2, 3, 4).copy_(Tensor::full({2, 3, 1}, 0.25));
  expect_error(causal(in.q, in.k, in.v, in.s0, 64, positive), {tag, "<= 0", "0.25"});
  // Non-causal: the same checks, queries free in T.
  expect_error([&] { linear_attention_noncausal(in.q, in.k.slice(3, 0, 3), in.v); },
               {tag, "[2, 3, 5, 3]"});
  expect_error([&] { linear_attention_noncausal(in.q, in.k, in.v.slice(2, 0, 4)); },
               {tag, "[2, 3, 4, 6]"});
  // The step form: the same validation on the token's shapes.
  const std::string step_tag = "[linear_attention_step]";
  Tensor q1 = in.q.select(2, 0), k1 = in.k.select(2, 0), v1 = in.v.select(2, 0);
  Tensor s = in.s0.clone();
  auto step = [&](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& st,
                  const Tensor& g = Tensor()) {
    return [=] { linear_attention_step(q, k, v, st, {g}); };
  };
  expect_error(step(in.q, k1, v1, s), {step_tag, "[B,H,Dk]", "[2, 3, 5, 4]"});
  expect_error(step(q1, k1.slice(2, 0, 3), v1, s), {step_tag, "Dk", "[2, 3, 3]"});
  expect_error(step(q1, k1, v1, s.slice(3, 0, 5)), {step_tag, "s", "[2, 3, 4, 5]"});
  expect_error(step(q1, k1, v1, s.transpose(2, 3).contiguous().transpose(2, 3)),
               {step_tag, "contiguous"});
  expect_error(step(q1, k1, v1, s, in.g), {step_tag, "[B,H]", "[2, 3, 5]"});
  expect_error(step(q1, k1, v1, s, Tensor::full({2, 3}, 0.5)), {step_tag, "<= 0"});
  expect_error(step(leaf(q1), k1, v1, s), {step_tag, "NoGradGuard"});
}
