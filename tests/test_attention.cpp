// Softmax attention baselines: the fused cpu kernel against the reference kernel and against
// attention_naive (outputs and gradients of q, k, v and rel_bias; f32 and f64; Tq = Tk, cached
// prefill, decode, ragged tiles, Dv != D; causal or not; sliding window; T5 bias), f64 gradient
// checks, causality, rows with no visible key, rotary embeddings, T5 bucket values, bitwise
// determinism across thread counts, O(T) memory at T = 4096, a KV cache's growing buffer read in
// place, and the errors.
//
// Shapes: B batch, H heads, Tq queries, Tk keys, D query/key head dim, Dv value head dim.
#include <omp.h>

#include <cmath>
#include <cstdlib>

#include "rill/core/allocator.h"
#include "rill/ops/attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

struct Case {
  int64_t B, H, Tq, Tk, D, Dv, q_offset;
};

// Tq = Tk; ragged tiles with Dv != D; a cached prefill (q_offset = Tk - Tq); decode (Tq = 1),
// and three queries with head dims that fill no whole vector (both take the cpu kernel's
// row-by-row path); three tiles per side. Small enough for the reference kernel.
const std::vector<Case> kCases = {{2, 2, 16, 16, 16, 16, 0},   {1, 2, 70, 70, 16, 8, 0},
                                  {1, 1, 37, 100, 64, 64, 63}, {2, 1, 1, 77, 64, 32, 76},
                                  {1, 2, 3, 50, 20, 12, 47},   {1, 1, 130, 130, 64, 64, 0}};

std::string describe(const Case& c, DType dt, const AttentionOptions& o, bool bias) {
  return fmt::format("{} B{} H{} Tq{} Tk{} D{} Dv{} q_offset {} {} window {} scale {}{}",
                     dtype_name(dt), c.B, c.H, c.Tq, c.Tk, c.D, c.Dv, o.q_offset,
                     o.causal ? "causal" : "non-causal", o.window, o.scale,
                     bias ? fmt::format(" bias {}/{}", o.num_buckets, o.max_distance) : "");
}

std::vector<Tensor> make_inputs(const Case& c, DType dt, uint64_t seed, bool bias,
                                const AttentionOptions& o, bool strided = false) {
  auto make = [&](const Shape& s, uint64_t k) {
    return strided ? random_strided(s, dt, seed + k) : random(s, dt, seed + k);
  };
  std::vector<Tensor> in = {make({c.B, c.H, c.Tq, c.D}, 1), make({c.B, c.H, c.Tk, c.D}, 2),
                            make({c.B, c.H, c.Tk, c.Dv}, 3)};
  if (bias) in.push_back(make({o.num_buckets, c.H}, 4));
  return in;
}

Tensor run(bool naive, const std::vector<Tensor>& in, const AttentionOptions& o) {
  const Tensor bias = in.size() > 3 ? in[3] : Tensor();
  return naive ? attention_naive(in[0], in[1], in[2], o, bias)
               : attention(in[0], in[1], in[2], o, bias);
}

// fn's output and the gradient of sum(output * w) (w fixed random) for every input.
std::vector<Tensor> value_and_grads(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                    const std::vector<Tensor>& inputs) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) {
    Tensor l = t.detach();
    l.set_requires_grad(true);
    leaves.push_back(l);
  }
  Tensor y = fn(leaves);
  sum(mul(y, random(y.shape(), y.dtype(), 99))).backward();
  std::vector<Tensor> out = {y.detach()};
  for (const Tensor& l : leaves) out.push_back(l.grad());
  return out;
}

void expect_all_close(const std::vector<Tensor>& actual, const std::vector<Tensor>& expected,
                      const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  const char* names[] = {"output", "dq", "dk", "dv", "drel_bias"};
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_TRUE(all_close(actual[i], expected[i])) << what << ", " << names[i];
}

}  // namespace

// The main agreement test: cpu (fused) vs ref for outputs and every gradient, and the fused
// kernel vs the composite attention_naive.
TEST(Attention, FusedMatchesRefAndNaive) {
  for (DType dt : {DType::f32, DType::f64})
    for (const Case& c : kCases)
      for (bool causal : {true, false})
        for (int64_t window : {int64_t(0), int64_t(24)})
          for (bool bias : {false, true}) {
            AttentionOptions o;
            o.causal = causal, o.q_offset = c.q_offset, o.window = window;
            // Few buckets and a short range, so that the exact, log and clamped parts all occur.
            o.num_buckets = 8, o.max_distance = 20;
            const std::string what = describe(c, dt, o, bias);
            std::vector<Tensor> in = make_inputs(c, dt, 10, bias, o);
            expect_backends_agree_with_grad(
                [&](const std::vector<Tensor>& x) { return run(false, x, o); }, in, what);
            BackendGuard g(Backend::cpu);
            auto fused = value_and_grads([&](const auto& x) { return run(false, x, o); }, in);
            auto naive = value_and_grads([&](const auto& x) { return run(true, x, o); }, in);
            expect_all_close(fused, naive, what + " (fused vs naive)");
          }
}

// Non-contiguous inputs, an explicit scale, and T5's default bucket parameters.
TEST(Attention, StridedInputsScaleAndDefaultBuckets) {
  for (DType dt : {DType::f32, DType::f64})
    for (bool causal : {true, false}) {
      const Case c{2, 2, 45, 81, 16, 24, 36};
      AttentionOptions o;
      o.causal = causal, o.q_offset = c.q_offset, o.scale = 0.3;
      const std::string what = describe(c, dt, o, true) + " strided";
      std::vector<Tensor> in = make_inputs(c, dt, 20, true, o, true);
      expect_backends_agree_with_grad(
          [&](const std::vector<Tensor>& x) { return run(false, x, o); }, in, what);
      BackendGuard g(Backend::cpu);
      expect_all_close(value_and_grads([&](const auto& x) { return run(false, x, o); }, in),
                       value_and_grads([&](const auto& x) { return run(true, x, o); }, in),
                       what + " (fused vs naive)");
    }
}

// A KV cache grown by append is a view with rows `capacity` apart per (b, h): the cpu forward
// reads it in place (row path for decode, packed tiles for a prefill) and gives exactly what it
// gives for contiguous copies; so does a view whose heads share rows (stride 0).
TEST(Attention, ReadsKvCacheViewsInPlace) {
  for (const Case& c : {Case{1, 4, 1, 150, 32, 32, 149}, Case{2, 3, 3, 100, 16, 8, 97},
                        Case{2, 2, 70, 90, 16, 16, 20}}) {
    AttentionOptions o;
    o.q_offset = c.q_offset;
    Tensor q = random({c.B, c.H, c.Tq, c.D}, DType::f32, 31);
    Tensor k = append(random({c.B, c.H, c.Tk - 1, c.D}, DType::f32, 32),
                      random({c.B, c.H, 1, c.D}, DType::f32, 33), 2);
    Tensor v = append(random({c.B, c.H, c.Tk - 1, c.Dv}, DType::f32, 34),
                      random({c.B, c.H, 1, c.Dv}, DType::f32, 35), 2);
    ASSERT_FALSE(k.is_contiguous());
    for (int64_t window : {int64_t(0), int64_t(40)}) {
      o.window = window;
      const Tensor want = attention(q, k.contiguous(), v.contiguous(), o);
      EXPECT_TRUE(bitwise_equal(attention(q, k, v, o), want)) << describe(c, DType::f32, o, false);
    }
    o.window = 0;
    Tensor shared = random({c.B, 1, c.Tk, c.D}, DType::f32, 36).expand({c.B, c.H, c.Tk, c.D});
    Tensor shared_v = random({c.B, 1, c.Tk, c.D}, DType::f32, 37).expand({c.B, c.H, c.Tk, c.D});
    EXPECT_TRUE(bitwise_equal(attention(q, shared, shared_v, o),
                              attention(q, shared.contiguous(), shared_v.contiguous(), o)))
        << describe(c, DType::f32, o, false) << " heads sharing rows";
  }
}

// A query past every key of its window, or before the first key, sees nothing: output 0 and no
// gradient, in every implementation.
TEST(Attention, RowsWithNoVisibleKeyGiveZero) {
  struct Empty {
    int64_t Tq, q_offset, window, lo, hi;  // rows [lo, hi) see no key
  };
  // Query i sits at i - 5: rows 0..4 come before every key (likewise rows 0..1 of 3 at i - 2).
  // Query i sits at i + 60 with a window of 10: it sees keys (i + 50, i + 60], none of them
  // below Tk = 70 once i >= 19.
  for (DType dt : {DType::f32, DType::f64})
    for (Empty e : {Empty{80, -5, 0, 0, 5}, Empty{3, -2, 0, 0, 2}, Empty{80, 60, 10, 19, 80}})
      for (bool bias : {false, true}) {
        const Case c{1, 2, e.Tq, 70, 16, 8, e.q_offset};
        AttentionOptions o;
        o.q_offset = e.q_offset, o.window = e.window, o.num_buckets = 8, o.max_distance = 20;
        const std::string what = describe(c, dt, o, bias);
        std::vector<Tensor> in = make_inputs(c, dt, 30, bias, o);
        expect_backends_agree_with_grad(
            [&](const std::vector<Tensor>& x) { return run(false, x, o); }, in, what);
        BackendGuard g(Backend::cpu);
        std::vector<Tensor> fused =
            value_and_grads([&](const auto& x) { return run(false, x, o); }, in);
        expect_all_close(fused, value_and_grads([&](const auto& x) { return run(true, x, o); }, in),
                         what + " (fused vs naive)");
        for (int k : {0, 1})  // the output and dq
          for (double x : fused[k].slice(2, e.lo, e.hi).to_vector<double>())
            ASSERT_EQ(x, 0.0) << what << (k == 0 ? " output" : " dq");
        EXPECT_NE(fused[0].slice(2, 0, e.lo).numel() + fused[0].slice(2, e.hi, e.Tq).numel(), 0);
      }
}

// The cpu kernel has an AVX-512 build and an x86-64-v3 build, picked at run time;
// RILL_ATTENTION_ISA=baseline forces the second, so that both are checked on any machine.
TEST(Attention, BaselineBuildMatchesRef) {
  struct EnvGuard {
    EnvGuard() { setenv("RILL_ATTENTION_ISA", "baseline", 1); }
    ~EnvGuard() { unsetenv("RILL_ATTENTION_ISA"); }
  } env;
  for (DType dt : {DType::f32, DType::f64})
    for (const Case& c : {kCases[1], kCases[2], kCases[3], kCases[4]})
      for (bool causal : {true, false}) {
        AttentionOptions o;
        o.causal = causal, o.q_offset = c.q_offset, o.window = causal ? 24 : 0;
        o.num_buckets = 8, o.max_distance = 20;
        expect_backends_agree_with_grad(
            [&](const std::vector<Tensor>& x) { return run(false, x, o); },
            make_inputs(c, dt, 15, true, o), describe(c, dt, o, true) + " baseline build");
      }
}

TEST(Attention, Gradcheck) {
  const Case c{1, 2, 5, 7, 4, 3, 2};
  for (bool causal : {true, false})
    for (int64_t window : {int64_t(0), int64_t(3)})
      for (bool bias : {false, true}) {
        AttentionOptions o;
        o.causal = causal, o.q_offset = c.q_offset, o.window = window;
        o.num_buckets = 6, o.max_distance = 5;
        gradcheck([&](const std::vector<Tensor>& x) { return run(false, x, o); },
                  make_inputs(c, DType::f64, 40, bias, o), describe(c, DType::f64, o, bias));
      }
}

// Changing the key and value of position t leaves every output of a query that cannot see t
// unchanged, exactly: before t (causal), or more than `window` after it.
TEST(Attention, Causality) {
  const Case c{1, 2, 100, 100, 16, 16, 0};
  const int64_t t = 60, window = 20;
  for (Backend b : {Backend::ref, Backend::cpu})
    for (bool bias : {false, true}) {
      BackendGuard g(b);
      AttentionOptions o;
      o.window = window, o.num_buckets = 8, o.max_distance = 20;
      std::vector<Tensor> in = make_inputs(c, DType::f32, 50, bias, o);
      Tensor before = run(false, in, o);
      std::vector<Tensor> changed = in;
      changed[1] = in[1].clone(), changed[2] = in[2].clone();
      changed[1].select(2, t).copy_(random({1, 2, 16}, DType::f32, 51));
      changed[2].select(2, t).copy_(random({1, 2, 16}, DType::f32, 52));
      Tensor after = run(false, changed, o);
      const std::string what = fmt::format("{} bias {}", backend_name(b), bias);
      EXPECT_TRUE(all_close(after.slice(2, 0, t), before.slice(2, 0, t), 0)) << what;
      EXPECT_TRUE(all_close(after.slice(2, t + window, 100), before.slice(2, t + window, 100), 0))
          << what;
      EXPECT_FALSE(all_close(after.slice(2, t, t + window), before.slice(2, t, t + window)))
          << what << ": the queries that see position " << t << " must change";
    }
}

// Attention over a prefix plus new queries equals the matching rows of attention over the whole
// sequence (the KV-cache contract of q_offset).
TEST(Attention, QueryOffsetMatchesFullSequence) {
  for (Backend b : {Backend::ref, Backend::cpu})
    for (int64_t window : {int64_t(0), int64_t(9)}) {
      BackendGuard g(b);
      AttentionOptions full;
      full.window = window, full.num_buckets = 8, full.max_distance = 20;
      const Case c{1, 2, 90, 90, 16, 16, 0};
      std::vector<Tensor> in = make_inputs(c, DType::f64, 55, true, full);
      Tensor all = run(false, in, full);
      for (int64_t start : {int64_t(0), int64_t(1), int64_t(64), int64_t(89)}) {
        AttentionOptions part = full;
        part.q_offset = start;
        std::vector<Tensor> pin = in;
        pin[0] = in[0].slice(2, start, 90);
        EXPECT_TRUE(all_close(run(false, pin, part), all.slice(2, start, 90)))
            << backend_name(b) << " window " << window << " start " << start;
      }
    }
}

// Only the inputs that require grad get one; the bias table's gradient is skipped when it is
// not wanted, and the others are unchanged by that.
TEST(Attention, GradientsOnlyWhereRequired) {
  const Case c{1, 2, 70, 70, 16, 16, 0};
  AttentionOptions o;
  o.num_buckets = 8, o.max_distance = 20;
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    std::vector<Tensor> in = make_inputs(c, DType::f64, 57, true, o);
    std::vector<Tensor> all = value_and_grads([&](const auto& x) { return run(false, x, o); }, in);
    Tensor q = in[0].detach();
    q.set_requires_grad(true);
    Tensor y = attention(q, in[1], in[2], o, in[3]);
    sum(mul(y, random(y.shape(), y.dtype(), 99))).backward();
    EXPECT_TRUE(all_close(q.grad(), all[1])) << backend_name(b);
    EXPECT_FALSE(in[1].grad().defined() || in[3].grad().defined()) << backend_name(b);
  }
}

TEST(Attention, ThreadCountInvariant) {
  const Case c{2, 2, 200, 200, 64, 48, 0};
  for (bool bias : {false, true})
    for (int64_t window : {int64_t(0), int64_t(100)}) {
      AttentionOptions o;
      o.window = window;
      std::vector<Tensor> in = make_inputs(c, DType::f32, 60, bias, o);
      expect_thread_invariant(
          [&] { return value_and_grads([&](const auto& x) { return run(false, x, o); }, in); },
          describe(c, DType::f32, o, bias));
    }
  Tensor x = random({2, 3, 150, 64}, DType::f32, 61);
  expect_thread_invariant(
      [&] { return value_and_grads([](const auto& in) { return rotary(in[0], 7); }, {x}); },
      "rotary");
}

// Forward + backward at T = 4096 holds a few tensors of q's size, never a T x T matrix.
TEST(Attention, MemoryIsLinearInSequenceLength) {
  BackendGuard g(Backend::cpu);
  const int64_t B = 1, H = 2, T = 4096, D = 64;
  AttentionOptions o;
  std::vector<Tensor> in = make_inputs({B, H, T, T, D, D, 0}, DType::f32, 70, true, o);
  for (Tensor& t : in) t.set_requires_grad(true);
  Tensor w = random({B, H, T, D}, DType::f32, 71);
  Allocator& alloc = Allocator::instance();
  const size_t live = alloc.live_bytes();
  alloc.reset_peak();
  {
    Tensor y = attention(in[0], in[1], in[2], o, in[3]);
    sum(mul(y, w)).backward();
  }
  const size_t used = alloc.peak_bytes() - live;
  // The fused kernels hold about 12 tensors of q's size at their peak (the output, the loss
  // weights' product, the gradients, and padded or transposed copies of q, k, v and dout). A
  // single [B, H, T, T] score matrix is T / D = 64 of them, and the naive version keeps several.
  const size_t q_bytes = in[0].nbytes();
  const size_t scores = static_cast<size_t>(B * H * T * T) * sizeof(float);
  EXPECT_LT(used, scores / 4) << "peak " << used << " bytes, q is " << q_bytes << " bytes";
  EXPECT_LT(used, 16 * q_bytes) << "peak " << used << " bytes, q is " << q_bytes << " bytes";
  EXPECT_TRUE(in[0].grad().defined() && in[3].grad().defined());
}

TEST(Rotary, FusedMatchesRef) {
  for (DType dt : {DType::f32, DType::f64})
    for (Shape s : {Shape{1, 1, 1, 2}, Shape{2, 3, 17, 8}, Shape{1, 2, 70, 64}})
      for (int64_t offset : {int64_t(0), int64_t(1000)})
        for (bool strided : {false, true}) {
          Tensor x = strided ? random_strided(s, dt, 80) : random(s, dt, 80);
          expect_backends_agree_with_grad(
              [&](const std::vector<Tensor>& in) { return rotary(in[0], offset); }, {x},
              fmt::format("rotary {} {} offset {}{}", dtype_name(dt), shape_str(s), offset,
                          strided ? " strided" : ""));
        }
}

TEST(Rotary, Gradcheck) {
  gradcheck([](const std::vector<Tensor>& in) { return rotary(in[0], 5, 100.0); },
            {random({1, 2, 3, 6}, DType::f64, 81)}, "rotary");
}

TEST(Rotary, MatchesFormula) {
  // Position 0 is the identity; position p rotates pair i by p * base^(-2i/D).
  const int64_t D = 8;
  Tensor x = random({1, 1, 3, D}, DType::f64, 82);
  for (Backend b : {Backend::ref, Backend::cpu}) {
    BackendGuard g(b);
    Tensor y = rotary(x, 4, 500.0);
    std::vector<double> xv = x.to_vector<double>(), expected(xv.size());
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t i = 0; i < D / 2; ++i) {
        const double angle = (4 + t) * std::pow(500.0, -2.0 * i / D);
        const double a = xv[t * D + i], c = xv[t * D + i + D / 2];
        expected[t * D + i] = a * std::cos(angle) - c * std::sin(angle);
        expected[t * D + i + D / 2] = a * std::sin(angle) + c * std::cos(angle);
      }
    EXPECT_TRUE(all_close(y, Tensor::from_vector(expected, {1, 1, 3, D}))) << backend_name(b);
    EXPECT_TRUE(bitwise_equal(rotary(x.slice(2, 0, 1), 0), x.slice(2, 0, 1))) << backend_name(b);
  }
}

// Rotation keeps each row's norm, and q.k after rotation depends only on the distance between
// the two positions.
TEST(Rotary, PreservesNormsAndRelativePosition) {
  for (DType dt : {DType::f32, DType::f64})
    for (Backend b : {Backend::ref, Backend::cpu}) {
      BackendGuard g(b);
      const std::string what = fmt::format("{} {}", backend_name(b), dtype_name(dt));
      Tensor x = random({2, 2, 33, 16}, dt, 83);
      Tensor y = rotary(x, 3);
      EXPECT_TRUE(all_close(sum(mul(y, y), {-1}), sum(mul(x, x), {-1}))) << what;
      Tensor q = random({1, 1, 1, 16}, dt, 84), k = random({1, 1, 1, 16}, dt, 85);
      auto score = [&](int64_t qpos, int64_t kpos) {
        return sum(mul(rotary(q, qpos), rotary(k, kpos)));
      };
      for (int64_t shift : {int64_t(1), int64_t(17), int64_t(250)})
        EXPECT_TRUE(all_close(score(10 + shift, 3 + shift), score(10, 3)))
            << what << " shift " << shift;
      EXPECT_FALSE(all_close(score(10, 3), score(10, 4))) << what;
    }
}

TEST(T5Bucket, KnownValues) {
  // Unidirectional, T5's defaults: 16 exact buckets, then log-spaced up to 128, clamped at 31.
  const std::vector<std::pair<int64_t, int64_t>> uni = {
      {-5, 0},  {0, 0},   {1, 1},    {15, 15},  {16, 16},  {20, 17},  {32, 21},
      {63, 26}, {64, 26}, {100, 30}, {127, 31}, {128, 31}, {1000, 31}};
  for (auto [rp, bucket] : uni) EXPECT_EQ(t5_bucket(rp, false, 32, 128), bucket) << rp;
  // Bidirectional: 16 buckets per side, keys after the query (rp < 0) in the upper half.
  const std::vector<std::pair<int64_t, int64_t>> bi = {
      {0, 0},    {3, 3},   {-3, 19}, {-1, 17}, {7, 7},    {8, 8},    {12, 9},   {16, 10},
      {-16, 26}, {31, 11}, {32, 12}, {64, 14}, {127, 15}, {200, 15}, {-200, 31}};
  for (auto [rp, bucket] : bi) EXPECT_EQ(t5_bucket(rp, true, 32, 128), bucket) << rp;
  // Monotone in the distance, and within range, for both kinds.
  for (bool bidirectional : {false, true}) {
    int64_t prev = 0;
    for (int64_t rp = 0; rp < 2000; ++rp) {
      const int64_t b = t5_bucket(rp, bidirectional, 32, 128);
      EXPECT_GE(b, prev) << rp;
      EXPECT_LE(b, bidirectional ? 15 : 31) << rp;
      prev = b;
    }
  }
}

TEST(Attention, BadInput) {
  Tensor q = random({1, 2, 5, 8}, DType::f32, 90), k = random({1, 2, 6, 8}, DType::f32, 91),
         v = random({1, 2, 6, 4}, DType::f32, 92), bias = random({32, 2}, DType::f32, 93);
  for (const char* op : {"[attention]", "[attention_naive]"}) {
    const bool naive = std::string(op) == "[attention_naive]";
    auto call = [&](const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& r,
                    AttentionOptions o = {}) {
      return naive ? attention_naive(a, b, c, o, r) : attention(a, b, c, o, r);
    };
    expect_error(
        [&] {
          call(random({2, 5, 8}, DType::f32, 1), k, v, Tensor());
        },
        {op, "[2, 5, 8]", "[B,H,Tq,D]"});
    expect_error(
        [&] {
          call(q, random({1, 2, 6, 4}, DType::f32, 1), v, Tensor());
        },
        {op, "head dims", "[1, 2, 5, 8]", "[1, 2, 6, 4]"});
    expect_error(
        [&] {
          call(q, k, random({1, 2, 7, 4}, DType::f32, 1), Tensor());
        },
        {op, "lengths", "[1, 2, 6, 8]", "[1, 2, 7, 4]"});
    expect_error(
        [&] {
          call(q, random({2, 2, 6, 8}, DType::f32, 1), v, Tensor());
        },
        {op, "batch", "[2, 2, 6, 8]"});
    expect_error(
        [&] {
          call(q, k, random({1, 3, 6, 4}, DType::f32, 1), Tensor());
        },
        {op, "head", "[1, 3, 6, 4]"});
    expect_error([&] { call(q, k.to(DType::f64), v, Tensor()); }, {op, "dtype", "f64", "f32"});
    expect_error(
        [&] {
          call(Tensor::randint({1, 2, 5, 8}, 0, 3, 1), k, v, Tensor());
        },
        {op, "dtype", "i64"});
    expect_error(
        [&] {
          call(q, k, v, random({31, 2}, DType::f32, 1));
        },
        {op, "rel_bias", "[31, 2]", "[32, 2]"});
    expect_error([&] { call(q, k, v, bias.to(DType::f64)); }, {op, "rel_bias", "f64"});
    AttentionOptions neg;
    neg.window = -1;
    expect_error([&] { call(q, k, v, Tensor(), neg); }, {op, "window", "-1"});
    AttentionOptions few;
    few.num_buckets = 1;
    expect_error(
        [&] {
          call(q, k, v, random({1, 2}, DType::f32, 1), few);
        },
        {op, "num_buckets", "1"});
  }
  expect_error(
      [&] {
        rotary(random({1, 2, 3, 5}, DType::f32, 1), 0);
      },
      {"[rotary]", "even", "[1, 2, 3, 5]"});
  expect_error([&] { rotary(random({2, 3, 4}, DType::f32, 1), 0); }, {"[rotary]", "[2, 3, 4]"});
  expect_error(
      [&] {
        rotary(Tensor::randint({1, 1, 2, 4}, 0, 3, 1), 0);
      },
      {"[rotary]", "i64", "[1, 1, 2, 4]"});
  expect_error([&] { rotary(q, 0, -1.0); }, {"[rotary]", "base"});
  expect_error([] { t5_bucket(3, true, 2, 128); }, {"[t5_bucket]", "num_buckets", "2"});
  expect_error([] { t5_bucket(3, false, 32, 16); }, {"[t5_bucket]", "max_distance", "16"});
}
