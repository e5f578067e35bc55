// Causal linear attention: the recurrent and chunked cpu forms against each other and the ref
// oracle (out, s_final and the gradients of q, k, v, s0 under a loss through both outputs), f64
// gradient checks of every form, segmentation invariance, causality, the recurrent form's O(T)
// memory, bitwise determinism across thread counts, the non-causal form, and the errors.
//
// Shapes: B batch, H heads, T tokens, Dk key/query features, Dv value size.
#include <omp.h>

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

struct Inputs {
  Tensor q, k, v, s0;  // s0 may be undefined
};

Inputs make_inputs(const Dims& d, DType dt, uint64_t seed, bool with_s0, bool strided = false) {
  auto gen = [&](const Shape& s, uint64_t sd) {
    return strided ? random_strided(s, dt, sd) : random(s, dt, sd);
  };
  Inputs in;
  in.q = gen({d.b, d.h, d.t, d.dk}, seed);
  in.k = gen({d.b, d.h, d.t, d.dk}, seed + 1);
  in.v = gen({d.b, d.h, d.t, d.dv}, seed + 2);
  if (with_s0) in.s0 = gen({d.b, d.h, d.dk, d.dv}, seed + 3);
  return in;
}

// out, s_final, then dq, dk, dv, ds0 (ds0 undefined without s0).
struct Result {
  Tensor out, sf, dq, dk, dv, ds0;
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

Result run(const Impl& impl, const Inputs& in) {
  BackendGuard g(impl.backend);
  Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0);
  auto [out, sf] = causal_linear_attention(q, k, v, s0, impl.form, impl.chunk);
  two_output_loss(out, sf).backward();
  return {out.detach(), sf.detach(), q.grad(),
          k.grad(),     v.grad(),    s0.defined() ? s0.grad() : Tensor()};
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
}

void expect_bitwise(const Result& a, const Result& e, const std::string& what) {
  EXPECT_TRUE(bitwise_equal(a.out, e.out)) << what << ": out";
  EXPECT_TRUE(bitwise_equal(a.sf, e.sf)) << what << ": s_final";
  EXPECT_TRUE(bitwise_equal(a.dq, e.dq)) << what << ": dq";
  EXPECT_TRUE(bitwise_equal(a.dk, e.dk)) << what << ": dk";
  EXPECT_TRUE(bitwise_equal(a.dv, e.dv)) << what << ": dv";
  if (e.ds0.defined()) {
    EXPECT_TRUE(bitwise_equal(a.ds0, e.ds0)) << what << ": ds0";
  }
}

// T = 1, T not a multiple of any chunk, Dv = Dk + 1, odd sizes, B*H = 1 and > 2, Dk wider than
// one vector group, Dv narrower than one vector, and a long sequence (f32 error growing with T).
const std::vector<Dims> kDims = {{1, 1, 1, 4, 4},     {1, 1, 7, 8, 9},     {2, 3, 37, 16, 17},
                                 {1, 2, 130, 64, 65}, {2, 2, 100, 5, 3},   {1, 1, 64, 7, 1},
                                 {1, 3, 50, 40, 72},  {1, 1, 20, 130, 33}, {1, 1, 1000, 8, 8}};
const std::vector<int64_t> kChunks = {1, 16, 64, 1000};

}  // namespace

TEST(LinearAttention, FormsMatchRef) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Dims& d : kDims)
      for (bool with_s0 : {true, false}) {
        const Inputs in = make_inputs(d, dt, 11, with_s0);
        const Result ref = run(kRef, in);
        std::vector<Impl> impls = {kRecurrent};
        for (int64_t c : kChunks) impls.push_back(chunked(c));
        Result first;
        for (const Impl& impl : impls) {
          const std::string what = fmt::format("{} vs ref, {} {}{}", impl.name(), dtype_name(dt),
                                               d.str(), with_s0 ? " s0" : "");
          const Result r = run(impl, in);
          expect_close(r, ref, what);
          // Every form against every other (the recurrent one is the first).
          if (first.out.defined())
            expect_close(r, first, what + " vs recurrent");
          else
            first = r;
        }
      }
}

// Gradients reaching only one of the two outputs (the other gets zeros from the engine).
TEST(LinearAttention, GradientThroughOneOutput) {
  const Dims d{2, 1, 70, 8, 9};
  const Inputs in = make_inputs(d, DType::f64, 25, true);
  for (int which : {0, 1}) {
    std::vector<Tensor> grads[4];
    const Impl impls[4] = {kRef, kRecurrent, chunked(16), chunked(64)};
    for (int i = 0; i < 4; ++i) {
      BackendGuard g(impls[i].backend);
      Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0);
      auto [out, sf] = causal_linear_attention(q, k, v, s0, impls[i].form, impls[i].chunk);
      Tensor y = which == 0 ? out : sf;
      sum(mul(y, random(y.shape(), DType::f64, 26))).backward();
      grads[i] = {q.grad(), k.grad(), v.grad(), s0.grad()};
    }
    for (int i = 1; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        EXPECT_TRUE(all_close(grads[i][j], grads[0][j]))
            << impls[i].name() << (which == 0 ? " out only" : " s_final only") << ", input " << j;
  }
}

TEST(LinearAttention, NoTokens) {
  for (const Impl& impl : {kRef, kRecurrent, chunked(16)}) {
    const Inputs in = make_inputs({2, 1, 0, 4, 5}, DType::f64, 12, true);
    const Result r = run(impl, in);
    EXPECT_EQ(r.out.shape(), (Shape{2, 1, 0, 5})) << impl.name();
    EXPECT_TRUE(bitwise_equal(r.sf, in.s0)) << impl.name();
    EXPECT_TRUE(bitwise_equal(r.ds0, random({2, 1, 4, 5}, DType::f64, 1002))) << impl.name();
  }
}

TEST(LinearAttention, StridedInputs) {
  const Dims d{2, 2, 45, 16, 17};
  for (DType dt : {DType::f32, DType::f64}) {
    const Inputs strided = make_inputs(d, dt, 13, true, true);
    ASSERT_FALSE(strided.q.is_contiguous());
    const Inputs dense{strided.q.contiguous(), strided.k.contiguous(), strided.v.contiguous(),
                       strided.s0.contiguous()};
    const Result ref = run(kRef, dense);
    for (const Impl& impl : {kRef, kRecurrent, chunked(16), chunked(64)})
      expect_close(run(impl, strided), ref,
                   fmt::format("{} strided, {} {}", impl.name(), dtype_name(dt), d.str()));
  }
}

// Central differences in f64 for every form: the ref backend's gradcheck, with the form's own
// backend set inside fn (the op's backward runs on the backend that ran its forward).
TEST(LinearAttention, Gradcheck) {
  for (const Dims& d : {Dims{1, 2, 5, 3, 4}, Dims{2, 1, 6, 4, 5}})
    for (const Impl& impl : {kRef, kRecurrent, chunked(1), chunked(4), chunked(16)}) {
      const Inputs in = make_inputs(d, DType::f64, 14, true);
      gradcheck(
          [&](const std::vector<Tensor>& x) {
            BackendGuard g(impl.backend);
            auto [out, sf] = causal_linear_attention(x[0], x[1], x[2], x[3], impl.form, impl.chunk);
            return two_output_loss(out, sf);
          },
          {in.q, in.k, in.v, in.s0}, fmt::format("{} {}", impl.name(), d.str()));
    }
}

// T tokens in two pieces, s_final of the first carried as s0 of the second, equals the whole:
// outputs, final state and every gradient (through the carried state too).
TEST(LinearAttention, SegmentationInvariance) {
  const Dims d{1, 2, 150, 16, 17};
  for (DType dt : {DType::f32, DType::f64})
    for (const Impl& impl : {kRef, kRecurrent, chunked(16), chunked(64)})
      for (int64_t split : {1, 64, 77, 149}) {
        const std::string what =
            fmt::format("{} {} split at {}", impl.name(), dtype_name(dt), split);
        const Inputs in = make_inputs(d, dt, 15, true);
        const Result whole = run(impl, in);
        BackendGuard g(impl.backend);
        Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0);
        auto piece = [&](const Tensor& x, int64_t a, int64_t b) { return x.slice(2, a, b); };
        auto [out1, s1] = causal_linear_attention(piece(q, 0, split), piece(k, 0, split),
                                                  piece(v, 0, split), s0, impl.form, impl.chunk);
        auto [out2, s2] = causal_linear_attention(piece(q, split, d.t), piece(k, split, d.t),
                                                  piece(v, split, d.t), s1, impl.form, impl.chunk);
        Tensor out = concat({out1, out2}, 2);
        two_output_loss(out, s2).backward();
        expect_close({out.detach(), s2.detach(), q.grad(), k.grad(), v.grad(), s0.grad()}, whole,
                     what);
      }
}

// Changing tokens from t0 on leaves outputs before t0 bitwise unchanged, and a loss on those
// outputs alone gives exactly zero gradient to the later tokens.
TEST(LinearAttention, Causality) {
  const Dims d{1, 2, 90, 16, 17};
  const int64_t t0 = 37;
  for (const Impl& impl : {kRef, kRecurrent, chunked(16), chunked(64)}) {
    BackendGuard g(impl.backend);
    const Inputs in = make_inputs(d, DType::f64, 16, true);
    Inputs changed{in.q.clone(), in.k.clone(), in.v.clone(), in.s0};
    for (Tensor* t : {&changed.q, &changed.k, &changed.v})
      t->slice(2, t0, d.t).copy_(random(t->slice(2, t0, d.t).shape(), DType::f64, 17));
    Tensor a = causal_linear_attention(in.q, in.k, in.v, in.s0, impl.form, impl.chunk).first;
    Tensor b =
        causal_linear_attention(changed.q, changed.k, changed.v, changed.s0, impl.form, impl.chunk)
            .first;
    EXPECT_TRUE(bitwise_equal(a.slice(2, 0, t0), b.slice(2, 0, t0))) << impl.name();

    Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v);
    Tensor out = causal_linear_attention(q, k, v, in.s0, impl.form, impl.chunk).first;
    sum(mul(out.slice(2, 0, t0), random({d.b, d.h, t0, d.dv}, DType::f64, 18))).backward();
    for (const Tensor* gr : {&q, &k, &v}) {
      Tensor future = gr->grad().slice(2, t0, d.t);
      EXPECT_TRUE(bitwise_equal(future, Tensor::zeros(future.shape(), DType::f64))) << impl.name();
    }
  }
}

// Forward + backward at T = 4096 keeps no per-token state: the peak stays within a fixed multiple
// of the inputs' bytes, far below the T*Dk*Dv floats that storing every S_t would take.
TEST(LinearAttention, MemoryIsLinearInT) {
  const Dims d{1, 2, 4096, 64, 64};
  const Inputs in = make_inputs(d, DType::f32, 19, true);
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
    EXPECT_LT(peak, 8 * input_bytes)
        << impl.name() << ": peak " << peak << " bytes, inputs " << input_bytes;
    EXPECT_LT(peak, all_states / 4) << impl.name();
  }
}

// Bitwise identical results on 1, 2 and 3 threads, for every form and dtype. With B*H = 1 the
// recurrent form also splits the state's columns differently for different thread counts.
TEST(LinearAttention, ThreadCountDeterminism) {
  const int saved = omp_get_max_threads();
  for (const Dims& d : {Dims{1, 3, 300, 64, 65}, Dims{1, 1, 400, 64, 65}})
    for (DType dt : {DType::f32, DType::f64})
      for (const Impl& impl : {kRecurrent, chunked(16), chunked(64)}) {
        const Inputs in = make_inputs(d, dt, 20, true);
        omp_set_num_threads(1);
        const Result one = run(impl, in);
        for (int threads : {2, 3}) {
          omp_set_num_threads(threads);
          expect_bitwise(
              run(impl, in), one,
              fmt::format("{} {} {} {} threads", impl.name(), dtype_name(dt), d.str(), threads));
        }
        omp_set_num_threads(saved);
      }
}

TEST(LinearAttention, NonCausal) {
  const Dims d{2, 3, 21, 8, 9};
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
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
  const Inputs in = make_inputs({2, 3, 5, 4, 6}, DType::f32, 24, true);
  auto causal = [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& s0,
                   int64_t chunk = 64) {
    return [=] { causal_linear_attention(q, k, v, s0, LinearAttentionForm::chunked, chunk); };
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
  // Non-causal: the same checks, queries free in T.
  expect_error([&] { linear_attention_noncausal(in.q, in.k.slice(3, 0, 3), in.v); },
               {tag, "[2, 3, 5, 3]"});
  expect_error([&] { linear_attention_noncausal(in.q, in.k, in.v.slice(2, 0, 4)); },
               {tag, "[2, 3, 4, 6]"});
}
