// The gated-state op with vector decays and resets: S_t = (gamma_t a_t b_t^T) ⊙ S_{t-1} + k_t v_t^T
// with a key-side a_t = exp(ga_t) [Dk], a value-side b_t = exp(gb_t) [Dv] and a scalar gamma_t,
// any subset given, and resets (a stream starts afresh). Checked: every form (ref, the cpu
// recurrent and chunked kernels, the step) against a per-step recurrence written here with plain
// differentiable ops in f64 (out, s_final and the gradients of q, k, v, s0 and every decay, from
// the tape: the chain rule through exp, not any closed form); f64 central differences through the
// cpu kernels; strong decays whose cumulative products underflow; resets equal separate
// sequences in every form and give the decays at a reset step a zero gradient; the bad inputs.
//
// Shapes: B batch, H heads, T tokens, Dk key/query features, Dv value size.
#include "rill/autograd/grad_mode.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/linear_attention.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

struct Dims {
  int64_t b, h, t, dk, dv;
  std::string str() const { return fmt::format("B{} H{} T{} Dk{} Dv{}", b, h, t, dk, dv); }
};

// Which decays are given.
struct Kinds {
  bool g, ga, gb;
  std::string str() const {
    return fmt::format("{}{}{}", g ? " g" : "", ga ? " ga" : "", gb ? " gb" : "");
  }
};
const std::vector<Kinds> kKinds = {{false, true, false},
                                   {false, false, true},
                                   {false, true, true},
                                   {true, true, true},
                                   {true, false, true}};

struct Inputs {
  Tensor q, k, v, s0, g, ga, gb, resets;
};

// lo..hi: the log-decays' range (kept below 0 so central differences stay <= 0).
Inputs make_inputs(const Dims& d, DType dt, uint64_t seed, const Kinds& kinds, double lo = -1.5,
                   double hi = -0.01) {
  Inputs in;
  in.q = random({d.b, d.h, d.t, d.dk}, dt, seed);
  in.k = random({d.b, d.h, d.t, d.dk}, dt, seed + 1);
  in.v = random({d.b, d.h, d.t, d.dv}, dt, seed + 2);
  in.s0 = random({d.b, d.h, d.dk, d.dv}, dt, seed + 3);
  if (kinds.g) in.g = random_uniform({d.b, d.h, d.t}, dt, seed + 4, lo / 4, hi);
  if (kinds.ga) in.ga = random_uniform({d.b, d.h, d.t, d.dk}, dt, seed + 5, lo, hi);
  if (kinds.gb) in.gb = random_uniform({d.b, d.h, d.t, d.dv}, dt, seed + 6, lo, hi);
  return in;
}

struct Result {
  Tensor out, sf, dq, dk, dv, ds0, dg, dga, dgb;
};

Tensor leaf(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor l = t.detach();
  l.set_requires_grad(true);
  return l;
}
Tensor grad_of(const Tensor& t) { return t.defined() ? t.grad() : Tensor(); }

Tensor two_output_loss(const Tensor& out, const Tensor& sf) {
  return add(sum(mul(out, random(out.shape(), out.dtype(), 2001))),
             sum(mul(sf, random(sf.shape(), sf.dtype(), 2002))));
}

struct Impl {
  Backend backend;
  LinearAttentionForm form;
  int64_t chunk;
  std::string name() const {
    if (backend == Backend::ref) return "ref";
    return form == LinearAttentionForm::recurrent ? "recurrent" : fmt::format("chunked/{}", chunk);
  }
};
const std::vector<Impl> kImpls = {{Backend::ref, LinearAttentionForm::chunked, 8},
                                  {Backend::cpu, LinearAttentionForm::recurrent, 8},
                                  {Backend::cpu, LinearAttentionForm::chunked, 1},
                                  {Backend::cpu, LinearAttentionForm::chunked, 7},
                                  {Backend::cpu, LinearAttentionForm::chunked, 64}};

Result run(const Impl& impl, const Inputs& in) {
  BackendGuard guard(impl.backend);
  Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0);
  Tensor g = leaf(in.g), ga = leaf(in.ga), gb = leaf(in.gb);
  auto [out, sf] =
      causal_linear_attention(q, k, v, s0, {g, ga, gb, in.resets}, impl.form, impl.chunk);
  two_output_loss(out, sf).backward();
  return {out.detach(), sf.detach(), q.grad(),    k.grad(),   v.grad(),
          grad_of(s0),  grad_of(g),  grad_of(ga), grad_of(gb)};
}

// The recurrence as written, token by token from differentiable ops under the ref backend:
// S = exp(g_t) exp(ga_t) exp(gb_t)^T ⊙ S (times 0 where a stream resets) + k_t^T v_t, out = q S.
Result run_naive(const Inputs& in) {
  BackendGuard guard(Backend::ref);
  Tensor q = leaf(in.q), k = leaf(in.k), v = leaf(in.v), s0 = leaf(in.s0);
  Tensor g = leaf(in.g), ga = leaf(in.ga), gb = leaf(in.gb);
  const int64_t b = q.size(0), t = q.size(2);
  Tensor s = s0;
  std::vector<Tensor> outs;
  for (int64_t i = 0; i < t; ++i) {
    Tensor qi = q.slice(2, i, i + 1), ki = k.slice(2, i, i + 1), vi = v.slice(2, i, i + 1);
    if (g.defined()) s = mul(exp(g.slice(2, i, i + 1).unsqueeze(3)), s);
    if (ga.defined()) s = mul(exp(ga.slice(2, i, i + 1).transpose(2, 3)), s);  // [B,H,Dk,1]
    if (gb.defined()) s = mul(exp(gb.slice(2, i, i + 1)), s);                  // [B,H,1,Dv]
    if (in.resets.defined()) {
      Tensor keep = add(mul(in.resets.to(q.dtype()).slice(1, i, i + 1), -1.0), 1.0);  // [B,1]
      s = mul(keep.view({b, 1, 1, 1}), s);
    }
    s = add(s, matmul(ki.transpose(2, 3), vi));
    outs.push_back(matmul(qi, s));
  }
  Tensor out = concat(outs, 2);
  two_output_loss(out, s).backward();
  return {out.detach(), s.detach(), q.grad(),    k.grad(),   v.grad(),
          grad_of(s0),  grad_of(g), grad_of(ga), grad_of(gb)};
}

void expect_close(const Result& a, const Result& e, const std::string& what, double tol = -1) {
  const char* names[] = {"out", "s_final", "dq", "dk", "dv", "ds0", "dg", "dga", "dgb"};
  const Tensor* as[] = {&a.out, &a.sf, &a.dq, &a.dk, &a.dv, &a.ds0, &a.dg, &a.dga, &a.dgb};
  const Tensor* es[] = {&e.out, &e.sf, &e.dq, &e.dk, &e.dv, &e.ds0, &e.dg, &e.dga, &e.dgb};
  for (int i = 0; i < 9; ++i) {
    ASSERT_EQ(as[i]->defined(), es[i]->defined()) << what << ": " << names[i];
    if (es[i]->defined()) {
      EXPECT_TRUE(all_close(*as[i], *es[i], tol)) << what << ": " << names[i];
    }
  }
}

const std::vector<Dims> kDims = {
    {1, 1, 1, 4, 4}, {2, 2, 13, 5, 3}, {1, 2, 40, 16, 17}, {1, 1, 70, 9, 65}, {2, 1, 30, 70, 8}};

}  // namespace

// Every form against the per-step recurrence, for every combination of decays, in f64 and f32.
TEST(VectorDecay, EveryFormMatchesThePerStepRecurrence) {
  for (DType dt : {DType::f64, DType::f32})
    for (const Dims& d : kDims)
      for (const Kinds& kinds : kKinds) {
        const Inputs in = make_inputs(d, dt, 41, kinds);
        const Result naive = run_naive(in);
        for (const Impl& impl : kImpls)
          expect_close(run(impl, in), naive,
                       fmt::format("{} {} {}{}", impl.name(), dtype_name(dt), d.str(), kinds.str()),
                       dt == DType::f32 ? 2e-4 : -1);
      }
}

// Strong decays (log-decays near -30 per token: a chunk's cumulative decay underflows to 0 within
// a few tokens): every form stays finite and equal to the recurrence.
TEST(VectorDecay, StrongDecayUnderflowsCleanly) {
  for (DType dt : {DType::f64, DType::f32}) {
    const Dims d{1, 2, 50, 6, 5};
    const Inputs in = make_inputs(d, dt, 43, {false, true, true}, -31, -29);
    const Result naive = run_naive(in);
    for (const Impl& impl : kImpls)
      expect_close(run(impl, in), naive, impl.name() + " " + dtype_name(dt),
                   dt == DType::f32 ? 2e-4 : -1);
  }
}

// f64 central differences through each cpu kernel and the oracle, every input and decay.
TEST(VectorDecay, Gradcheck) {
  const Dims d{1, 2, 9, 3, 4};
  for (const Kinds& kinds : kKinds)
    for (const Impl& impl : kImpls) {
      const Inputs in = make_inputs(d, DType::f64, 47, kinds, -1.0, -0.05);
      std::vector<Tensor> xs = {in.q, in.k, in.v, in.s0};
      for (const Tensor& t : {in.g, in.ga, in.gb})
        if (t.defined()) xs.push_back(t);
      gradcheck(
          [&](const std::vector<Tensor>& x) {
            size_t i = 4;
            Tensor g = kinds.g ? x[i++] : Tensor(), ga = kinds.ga ? x[i++] : Tensor();
            Tensor gb = kinds.gb ? x[i++] : Tensor();
            auto [out, sf] =
                causal_linear_attention(x[0], x[1], x[2], x[3], {g, ga, gb}, impl.form, impl.chunk);
            return concat({out.reshape({-1}), sf.reshape({-1})}, 0);
          },
          xs, impl.name() + kinds.str(), kGradcheckTol, impl.backend);
    }
}

// Resets: each stream's outputs from a reset on equal a run from a zero state over that piece,
// in every form and with every kind of decay (none, scalar, vectors); the decays at a reset step
// get a zero gradient; gradients match the recurrence with the state multiplied by 0 there.
TEST(VectorDecay, ResetsEqualSeparateSequences) {
  const Dims d{2, 2, 23, 5, 4};
  const std::vector<Kinds> kinds_list = {
      {false, false, false}, {true, false, false}, {false, true, true}, {true, true, false}};
  for (DType dt : {DType::f64, DType::f32})
    for (const Kinds& kinds : kinds_list) {
      Inputs in = make_inputs(d, dt, 53, kinds);
      in.resets = Tensor::zeros({2, d.t}, DType::i64);
      // stream 0 resets at 0 (drops s0) and 9; stream 1 at 16 (inside a chunk of 7 and of 64)
      for (auto [b, t] : {std::pair<int64_t, int64_t>{0, 0}, {0, 9}, {1, 16}})
        in.resets.select(0, b).select(0, t).fill_(1.0);
      const Result naive = run_naive(in);
      for (const Impl& impl : kImpls) {
        const std::string what = fmt::format("{} {}{}", impl.name(), dtype_name(dt), kinds.str());
        const Result r = run(impl, in);
        expect_close(r, naive, what, dt == DType::f32 ? 2e-4 : -1);
        // Separate sequences: stream 1's tokens 16.. from a zero state.
        BackendGuard guard(impl.backend);
        NoGradGuard no_grad;
        auto piece = [&](const Tensor& x, int64_t t0) {
          return x.select(0, 1).narrow(1, t0, d.t - t0).unsqueeze(0);
        };
        LinearAttentionDecay dec;
        if (in.g.defined()) dec.log_decay = piece(in.g, 16);
        if (in.ga.defined()) dec.key_log_decay = piece(in.ga, 16);
        if (in.gb.defined()) dec.value_log_decay = piece(in.gb, 16);
        auto [out, sf] = causal_linear_attention(piece(in.q, 16), piece(in.k, 16), piece(in.v, 16),
                                                 Tensor(), dec, impl.form, impl.chunk);
        EXPECT_TRUE(all_close(r.out.select(0, 1).narrow(1, 16, d.t - 16), out.select(0, 0)))
            << what << ": stream 1 after its reset";
        EXPECT_TRUE(all_close(r.sf.select(0, 1), sf.select(0, 0))) << what << ": s_final";
        for (const Tensor* dg : {&r.dg, &r.dga, &r.dgb})
          if (dg->defined()) {
            Tensor at = dg->select(0, 1).select(1, 16);
            EXPECT_EQ(sum(abs(at)).item<double>(), 0.0) << what << ": decay gradient at a reset";
          }
      }
    }
}

// The step form with vector decays and resets, token by token, equals the sequence form.
TEST(VectorDecay, StepMatchesTheSequenceForm) {
  const Dims d{2, 2, 12, 5, 6};
  for (Backend backend : {Backend::ref, Backend::cpu})
    for (const Kinds& kinds : kKinds) {
      BackendGuard guard(backend);
      NoGradGuard no_grad;
      Inputs in = make_inputs(d, DType::f64, 59, kinds);
      in.resets = Tensor::zeros({2, d.t}, DType::f32);
      in.resets.select(0, 0).select(0, 5).fill_(1.0);
      auto [want, want_sf] =
          causal_linear_attention(in.q, in.k, in.v, in.s0, {in.g, in.ga, in.gb, in.resets});
      Tensor s = in.s0.clone();
      for (int64_t t = 0; t < d.t; ++t) {
        auto at = [&](const Tensor& x) { return x.defined() ? x.select(2, t) : Tensor(); };
        Tensor o = linear_attention_step(at(in.q), at(in.k), at(in.v), s,
                                         {at(in.g), at(in.ga), at(in.gb), in.resets.select(1, t)});
        EXPECT_TRUE(all_close(o, want.select(2, t)))
            << backend_name(backend) << kinds.str() << " token " << t;
      }
      EXPECT_TRUE(all_close(s, want_sf)) << backend_name(backend) << kinds.str();
    }
}

TEST(VectorDecay, BadInputIsRefused) {
  const Dims d{1, 2, 5, 3, 4};
  const Inputs in = make_inputs(d, DType::f32, 61, {false, true, true});
  expect_error(
      [&] {
        causal_linear_attention(in.q, in.k, in.v, in.s0, {Tensor(), in.gb, Tensor()});
      },
      {"key-side log-decay ga", "[B,H,T,Dk]"});
  expect_error(
      [&] {
        causal_linear_attention(in.q, in.k, in.v, in.s0, {Tensor(), Tensor(), in.ga});
      },
      {"value-side log-decay gb", "[B,H,T,Dv]"});
  expect_error(
      [&] {
        causal_linear_attention(in.q, in.k, in.v, in.s0,
                                {Tensor(), Tensor::full({1, 2, 5, 3}, 0.5, DType::f32), in.gb});
      },
      {"must be <= 0"});
  expect_error(
      [&] {
        causal_linear_attention(in.q, in.k, in.v, in.s0,
                                {Tensor(), in.ga, in.gb, Tensor::zeros({1, 4}, DType::f32)});
      },
      {"resets must be [B,T]"});
}

// Every cpu form is bitwise identical on 1, 2 and 3 threads (column groups regroup with the
// thread count; a column's operations must not).
TEST(VectorDecay, ThreadCountDeterminism) {
  for (const Dims& d : {Dims{1, 1, 300, 64, 65}, Dims{1, 3, 100, 64, 65}, Dims{1, 1, 50, 33, 17}})
    for (DType dt : {DType::f32, DType::f64})
      for (const Kinds& kinds : kKinds)
        for (const Impl& impl : kImpls) {
          if (impl.backend != Backend::cpu) continue;
          const Inputs in = make_inputs(d, dt, 20, kinds);
          expect_thread_invariant(
              [&] {
                Result r = run(impl, in);
                std::vector<Tensor> v;
                for (const Tensor* t :
                     {&r.out, &r.sf, &r.dq, &r.dk, &r.dv, &r.ds0, &r.dg, &r.dga, &r.dgb})
                  if (t->defined()) v.push_back(*t);
                return v;
              },
              fmt::format("{} {} {}{}", impl.name(), dtype_name(dt), d.str(), kinds.str()));
        }
}

// Widths 2 to 4 columns past a multiple of 16 (the scans run those columns down the rows)
// against the per-step recurrence.
TEST(VectorDecay, RaggedColumnTails) {
  for (const Dims& d : {Dims{1, 1, 50, 18, 20}, Dims{1, 2, 37, 64, 67}, Dims{1, 1, 20, 35, 36}})
    for (DType dt : {DType::f64, DType::f32})
      for (const Kinds& kinds : kKinds) {
        const Inputs in = make_inputs(d, dt, 41, kinds);
        const Result naive = run_naive(in);
        for (const Impl& impl : kImpls)
          expect_close(run(impl, in), naive,
                       fmt::format("{} {} {}{}", impl.name(), dtype_name(dt), d.str(), kinds.str()),
                       dt == DType::f32 ? 2e-4 : -1);
        for (const Impl& impl : kImpls) {
          if (impl.backend != Backend::cpu) continue;
          expect_thread_invariant(
              [&] {
                Result r = run(impl, in);
                std::vector<Tensor> v;
                for (const Tensor* t :
                     {&r.out, &r.sf, &r.dq, &r.dk, &r.dv, &r.ds0, &r.dg, &r.dga, &r.dgb})
                  if (t->defined()) v.push_back(*t);
                return v;
              },
              fmt::format("{} {} {}{}", impl.name(), dtype_name(dt), d.str(), kinds.str()));
        }
      }
}
