// The mixer contract, run over every registered mixer's example configurations (so a new mixer
// gets it by registering): the parallel (or chunkwise) forward, the step-by-step recurrence and
// the pieces-with-carried-state forms compute the same function, outputs and final state;
// causality; f64 central-difference gradients of the input, every parameter and the initial
// state, through both the ref oracle and the cpu kernels users run; state save/load/clone.
// Then checks particular to linear attention and the softmax baselines (the KV cache appended in
// place against concatenation).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rill/autograd/grad_mode.h"
#include "rill/mixers/linear_attention.h"
#include "rill/mixers/registry.h"
#include "rill/mixers/softmax_attention.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "tests/support/states.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

constexpr int64_t kD = 16;

struct Example {
  std::string name;  // "<type> #i: <config>"
  json config;
};

// Every registered mixer's examples: the contract's configurations.
std::vector<Example> examples() {
  std::vector<Example> out;
  for (const MixerSpec* spec : registered_mixers())
    for (size_t i = 0; i < spec->examples.size(); ++i)
      out.push_back(
          {fmt::format("{} #{}: {}", spec->type, i, spec->examples[i].dump()), spec->examples[i]});
  return out;
}

std::shared_ptr<Mixer> build(const json& c, DType dt, uint64_t seed = 3) {
  return make_mixer(c, kD, seed, dt);
}

// Runs forward over x in pieces of the given lengths, carrying the state.
Tensor forward_in_pieces(Mixer& m, const Tensor& x, const std::vector<int64_t>& pieces, State& s) {
  std::vector<Tensor> outs;
  int64_t t = 0;
  for (int64_t len : pieces) {
    outs.push_back(m.forward(x.narrow(1, t, len), &s));
    t += len;
  }
  return concat(outs, 1);
}

Tensor forward_by_steps(Mixer& m, const Tensor& x, State& s) {
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < x.size(1); ++t) outs.push_back(m.step(x.select(1, t), s).unsqueeze(1));
  return concat(outs, 1);
}

}  // namespace

TEST(Mixers, RegistryCoversEveryMixer) {
  std::vector<std::string> types;
  for (const MixerSpec* s : registered_mixers()) {
    types.push_back(s->type);
    EXPECT_FALSE(s->examples.empty()) << s->type << " registers no example configuration";
    EXPECT_FALSE(s->summary.empty()) << s->type;
  }
  EXPECT_NE(std::find(types.begin(), types.end(), "linear_attention"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "softmax_attention"), types.end());
  std::printf("the contract suite covers %zu configurations:\n", examples().size());
  for (const Example& e : examples()) std::printf("  %s\n", e.name.c_str());
}

// 150 tokens cross the chunk boundaries of every example (chunks of 16 to 64) and the windows
// (64); the pieces start and end inside chunks.
TEST(Mixers, ParallelStepAndPiecesAgree) {
  for (const Example& e : examples())
    for (DType dt : {DType::f32, DType::f64}) {
      const std::string what = e.name + " " + dtype_name(dt);
      auto m = build(e.config, dt);
      Tensor x = random({2, 150, kD}, dt, 5);
      State whole = m->init_state(2);
      Tensor y = m->forward(x, &whole);
      // Without a state the forward is the same function.
      EXPECT_TRUE(all_close(m->forward(x, nullptr), y)) << what;
      State pieces = m->init_state(2);
      EXPECT_TRUE(all_close(forward_in_pieces(*m, x, {70, 1, 79}, pieces), y)) << what << " pieces";
      expect_states_close(whole, pieces, what + " pieces");
      State steps = m->init_state(2);
      EXPECT_TRUE(all_close(forward_by_steps(*m, x, steps), y)) << what << " steps";
      expect_states_close(whole, steps, what + " steps");
    }
}

// Resets inside a sequence equal separate sequences: each stream's output from a reset on is the
// output of a fresh run over that piece, its final state that of the last piece alone, and the
// gradient reaches the carried-in state only through streams that have not reset. Every mixer
// takes resets at the same positions in all streams; one whose state keeps its shape also takes
// different positions per stream (a KV cache that grows cannot be reset for part of a batch).
TEST(Mixers, ResetsEqualSeparateSequences) {
  for (const Example& e : examples())
    for (DType dt : {DType::f32, DType::f64}) {
      auto m = build(e.config, dt);
      const int64_t len = 90;
      Tensor x = random({2, len, kD}, dt, 31);
      State warm = m->init_state(2);  // a non-empty incoming state
      {
        NoGradGuard no_grad;
        m->forward(random({2, 5, kD}, dt, 32), &warm);
      }
      bool fixed_shape = true;
      const State fresh = m->init_state(2);
      for (const auto& [name, t] : warm.tensors())
        fixed_shape = fixed_shape && t.shape() == fresh.get(name).shape() && t.dim() >= 1;
      // Stream cuts: {0: 37, 70} {1: 0, 37, 51} (stream 1 also drops its incoming state), or
      // {37, 70} in both when the state grows.
      std::vector<std::vector<int64_t>> cuts =
          fixed_shape ? std::vector<std::vector<int64_t>>{{37, 70}, {0, 37, 51}}
                      : std::vector<std::vector<int64_t>>{{37, 70}, {37, 70}};
      Tensor resets = Tensor::zeros({2, len}, DType::f32);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t c : cuts[b]) resets.select(0, b).select(0, c).fill_(1.0);
      State s = warm.clone();
      Tensor y = m->forward_with_resets(x, &s, resets);
      const std::string what = e.name + " " + dtype_name(dt);
      for (int64_t b = 0; b < 2; ++b) {
        std::vector<int64_t> starts{0};
        for (int64_t c : cuts[b])
          if (c > 0) starts.push_back(c);
        State lane = warm.clone();
        if (cuts[b][0] == 0) lane = m->init_state(2);
        for (size_t i = 0; i < starts.size(); ++i) {
          if (i > 0) lane = m->init_state(2);
          const int64_t t0 = starts[i], t1 = i + 1 < starts.size() ? starts[i + 1] : len;
          Tensor want = m->forward(x.narrow(1, t0, t1 - t0), &lane);
          EXPECT_TRUE(all_close(y.select(0, b).narrow(0, t0, t1 - t0), want.select(0, b)))
              << what << " stream " << b << " piece from " << t0;
        }
        for (const auto& [name, t] : s.tensors()) {
          if (is_floating(t.dtype())) {
            EXPECT_TRUE(all_close(t.select(0, b), lane.get(name).select(0, b)))
                << what << " stream " << b << " final state " << name;
          }
        }
      }
    }
}

TEST(Mixers, Causality) {
  for (const Example& e : examples()) {
    auto m = build(e.config, DType::f64);
    Tensor x = random({1, 9, kD}, DType::f64, 6);
    Tensor y = m->forward(x, nullptr);
    Tensor x2 = x.clone();
    x2.select(1, 6).copy_(random({1, kD}, DType::f64, 7));  // change token 6
    Tensor y2 = m->forward(x2, nullptr);
    EXPECT_TRUE(bitwise_equal(y2.narrow(1, 0, 6), y.narrow(1, 0, 6))) << e.name;
    EXPECT_FALSE(all_close(y2.narrow(1, 6, 1), y.narrow(1, 6, 1))) << e.name;
  }
}

// f64 central differences of the input, every parameter and every floating tensor of a non-empty
// initial state (the state after a prefix, so KV caches and carried inputs are filled), with a
// loss that reads the final state too; under the ref oracle and under the cpu kernels.
TEST(Mixers, GradcheckInputParametersAndInitialState) {
  for (const Example& e : examples())
    for (Backend backend : {Backend::ref, Backend::cpu}) {
      BackendGuard guard(backend);
      auto m = build(e.config, DType::f64, 21);
      State s0 = m->init_state(1);
      {
        NoGradGuard no_grad;
        m->forward(random({1, 3, kD}, DType::f64, 22), &s0);
      }
      std::vector<Tensor> wrt;
      Tensor x = random({1, 4, kD}, DType::f64, 23).set_requires_grad(true);
      wrt.push_back(x);
      State start;  // the initial state as leaves
      for (const auto& [name, t] : s0.tensors()) {
        Tensor leaf = t.detach().clone();
        if (is_floating(t.dtype()) && t.numel() > 0) {
          leaf.set_requires_grad(true);
          wrt.push_back(leaf);
        }
        start.set(name, leaf);
      }
      const size_t state_leaves = wrt.size() - 1;
      for (const Tensor& p : m->parameters()) wrt.push_back(p);
      gradcheck_leaves(
          [&] {
            State s = start;
            Tensor y = m->forward(x, &s);
            std::vector<Tensor> parts{y.reshape({-1})};
            for (const auto& [name, t] : s.tensors())
              if (is_floating(t.dtype()) && t.numel() > 0) parts.push_back(t.reshape({-1}));
            return concat(parts, 0);
          },
          wrt, e.name, backend);
      EXPECT_GE(state_leaves, 1u) << e.name << ": no initial-state tensor was checked";
    }
}

// The recurrent and chunked kernels give the same outputs, final state and gradients of the
// input, of every parameter and of the initial state, with a loss through the final state too.
TEST(Mixers, LinearAttentionFormsAgreeWithGradients) {
  for (DType dt : {DType::f32, DType::f64})
    for (bool normalize : {true, false}) {
      std::vector<std::vector<Tensor>> grads;
      std::vector<Tensor> outs, finals;
      for (const char* form : {"recurrent", "chunked"}) {
        auto m = build({{"type", "linear_attention"},
                        {"heads", 2},
                        {"form", form},
                        {"chunk", 4},
                        {"normalize", normalize}},
                       dt);
        Tensor x = random({2, 10, kD}, dt, 8).set_requires_grad(true);
        State s = m->init_state(2);
        Tensor s0 = random_uniform(s.get("S").shape(), dt, 9, 0.1, 1.0).set_requires_grad(true);
        s.set("S", s0);
        Tensor y = m->forward(x, &s);
        Tensor loss = add(sum(mul(y, random(y.shape(), dt, 10))),
                          sum(mul(s.get("S"), random(s0.shape(), dt, 11))));
        loss.backward();
        std::vector<Tensor> g{x.grad(), s0.grad()};
        for (const Tensor& p : m->parameters()) g.push_back(p.grad());
        grads.push_back(g);
        outs.push_back(y.detach());
        finals.push_back(s.get("S").detach());
      }
      const std::string what = fmt::format("{} normalize {}", dtype_name(dt), normalize);
      EXPECT_TRUE(all_close(outs[1], outs[0])) << what;
      EXPECT_TRUE(all_close(finals[1], finals[0])) << what;
      ASSERT_EQ(grads[0].size(), grads[1].size());
      for (size_t i = 0; i < grads[0].size(); ++i)
        EXPECT_TRUE(all_close(grads[1][i], grads[0][i])) << what << " gradient " << i;
    }
}

// Against the quadratic form written directly from the paper's eq. (6)/(9), with the
// fast-transformers placement of eps: y_i = sum_{j<=i} (phi(q_i).phi(k_j)) v_j /
// (sum_{j<=i} phi(q_i).phi(k_j) + eps), through the mixer's own projections. eps is large here
// (0.5), so that adding it anywhere else (to the numerator, inside the sum, squared) fails.
TEST(Mixers, LinearAttentionMatchesTheQuadraticForm) {
  for (double eps : {0.0, 0.5}) {
    LinearAttentionConfig c;
    c.d_model = kD, c.heads = 2, c.dtype = DType::f64, c.chunk = 4, c.eps = eps;
    LinearAttentionMixer m(c);
    Tensor x = random({2, 7, kD}, DType::f64, 12);
    Tensor y = m.forward(x, nullptr);
    auto params = m.state_dict();
    auto param = [&](const std::string& n) {
      for (auto& [k, v] : params)
        if (k == n) return v;
      return Tensor();
    };
    auto heads = [&](const Tensor& w) {  // [B,T,D] x W^T -> [B,H,T,8]
      return matmul(x, w.transpose(0, 1)).view({2, 7, 2, 8}).transpose(1, 2);
    };
    auto phi = [](const Tensor& t) { return add(elu(t), 1.0); };
    Tensor q = phi(heads(param("proj.q.weight"))), k = phi(heads(param("proj.k.weight")));
    Tensor v = heads(param("proj.v.weight"));
    Tensor a = matmul(q, k.transpose(2, 3));  // [B,H,T,T], all positive
    Tensor mask = Tensor::zeros({7, 7}, DType::f64);
    for (int i = 0; i < 7; ++i)
      for (int j = 0; j <= i; ++j) mask.data<double>()[i * 7 + j] = 1;
    a = mul(a, mask);
    Tensor o = div(matmul(a, v), add(sum(a, {3}, true), eps));
    Tensor expect =
        matmul(o.transpose(1, 2).reshape({2, 7, 16}), param("proj.o.weight").transpose(0, 1));
    EXPECT_TRUE(all_close(y, expect)) << "eps " << eps;
  }
}

TEST(Mixers, StepStateIsConstantOver10000Steps) {
  for (const json& c : {json{{"type", "linear_attention"}, {"heads", 2}},
                        json{{"type", "linear_attention"}, {"heads", 2}, {"local", "conv4"}}}) {
    auto m = build(c, DType::f32);
    State s = m->init_state(1);
    const size_t bytes = s.bytes();
    EXPECT_EQ(m->state_bytes(1000000), bytes) << c.dump();
    Tensor x = random({1, kD}, DType::f32, 16);
    Tensor y;
    for (int t = 0; t < 10000; ++t) {
      y = m->step(x, s);
      ASSERT_EQ(s.bytes(), bytes) << c.dump() << " step " << t;
    }
    for (float v : y.to_vector<float>()) EXPECT_TRUE(std::isfinite(v)) << c.dump();
    EXPECT_TRUE(m->constant_state()) << c.dump();
  }
  // The KV cache grows; the window keeps it bounded; state_bytes says so without running.
  Tensor x = random({1, kD}, DType::f32, 16);
  auto kv = build({{"type", "softmax_attention"}, {"heads", 2}}, DType::f32);
  auto win = build({{"type", "softmax_attention"}, {"heads", 2}, {"window", 8}}, DType::f32);
  State a = kv->init_state(1), b = win->init_state(1);
  for (int t = 0; t < 50; ++t) kv->step(x, a), win->step(x, b);
  EXPECT_EQ(a.bytes(), kv->state_bytes(50));
  EXPECT_EQ(b.bytes(), win->state_bytes(50));
  EXPECT_EQ(b.bytes(), 2u * 2 * 8 * 8 * 4 + 8);  // k and v: [1, 2 heads, 8 keys, 8] f32, pos
  EXPECT_TRUE(win->constant_state());            // a window bounds the cache
  EXPECT_FALSE(kv->constant_state());
}

// The KV cache's step appends in place (ops/index.h append). Over 300 steps (the buffer regrows a
// few times) outputs and state equal, bit for bit, those of a stream whose cache is copied into
// plain tensors before every step (so each step concatenates, as before appends). A clone, a
// saved and loaded state and a shallow copy taken mid-stream continue identically (the shallow
// copy's first step copies its cache: the original has appended past it). bytes() counts the
// keys held (as state_bytes() does per stream), not the buffer's spare capacity.
TEST(Mixers, SoftmaxKvCacheAppendsInPlace) {
  const std::string path = ::testing::TempDir() + "/rill_kv_state.safetensors";
  for (const json& c : {json{{"type", "softmax_attention"}, {"heads", 2}},
                        json{{"type", "softmax_attention"}, {"heads", 2}, {"positions", "t5"}},
                        json{{"type", "softmax_attention"}, {"heads", 2}, {"window", 24}}}) {
    auto m = build(c, DType::f32);
    const int steps = 300, mid = 150;
    State a = m->init_state(2), b = m->init_state(2), fork, loaded, shallow;
    std::vector<Tensor> xs, ys;
    std::vector<const void*> buffers;
    for (int t = 0; t < steps; ++t) {
      xs.push_back(random({2, kD}, DType::f32, 500 + t));
      ys.push_back(m->step(xs.back(), a));
      State plain;
      for (const auto& [name, v] : b.tensors()) plain.set(name, v.clone());
      b = plain;
      ASSERT_TRUE(bitwise_equal(m->step(xs.back(), b), ys.back())) << c.dump() << " step " << t;
      const void* data = a.get("k").impl()->storage->data;
      if (buffers.empty() || buffers.back() != data) buffers.push_back(data);
      if (t == mid) {
        fork = a.clone(), shallow = a;
        a.save(path);
        loaded = State::load(path);
        EXPECT_EQ(loaded.get("k").shape(), a.get("k").shape()) << c.dump();
      }
    }
    expect_states_close(a, b, c.dump());
    EXPECT_TRUE(bitwise_equal(a.get("k"), b.get("k")) && bitwise_equal(a.get("v"), b.get("v")))
        << c.dump();
    EXPECT_LE(buffers.size(), c.contains("window") ? 12u : 6u) << c.dump();
    EXPECT_FALSE(a.get("k").is_contiguous()) << c.dump() << ": a view of a larger buffer";
    const size_t keys = c.contains("window") ? 24 : steps;  // k, v [2 streams, 2 heads, keys, 8]
    EXPECT_EQ(a.bytes(), 2 * (2 * 2 * keys * 8) * sizeof(float) + sizeof(int64_t)) << c.dump();
    for (int t = mid + 1; t < steps; ++t)
      for (State* s : {&fork, &loaded, &shallow})
        ASSERT_TRUE(bitwise_equal(m->step(xs[t], *s), ys[t])) << c.dump() << " step " << t;
  }
}

TEST(Mixers, StateSaveLoadAndCloneContinueIdentically) {
  for (const Example& e : examples()) {
    auto m = build(e.config, DType::f32);
    Tensor x = random({2, 6, kD}, DType::f32, 17), more = random({2, 3, kD}, DType::f32, 18);
    State s = m->init_state(2);
    m->forward(x, &s);
    State fork = s.clone();
    const std::string path = ::testing::TempDir() + "/rill_state.safetensors";
    s.save(path, {{"note", "test"}});
    std::map<std::string, std::string> meta;
    State loaded = State::load(path, &meta);
    EXPECT_EQ(meta.at("note"), "test");
    Tensor a = m->forward(more, &s);
    EXPECT_TRUE(bitwise_equal(m->forward(more, &fork), a)) << e.name;
    EXPECT_TRUE(bitwise_equal(m->forward(more, &loaded), a)) << e.name;
  }
}

TEST(Mixers, BadInputAndConfig) {
  auto m = build({{"type", "linear_attention"}, {"heads", 2}}, DType::f32);
  expect_error(
      [&] {
        m->forward(random({2, 3, kD + 1}, DType::f32, 1), nullptr);
      },
      {"[linear_attention]", "[2, 3, 17]"});
  State s = m->init_state(1);
  expect_error(
      [&] {
        m->step(random({3, kD}, DType::f32, 1), s);
      },
      {"[linear_attention]", "state S"});
  // Unknown types list what is registered.
  expect_error(
      [&] {
        make_mixer({{"type", "mamba"}}, kD, 0, DType::f32);
      },
      {"[config]", "mamba", "linear_attention", "softmax_attention"});
  expect_error(
      [&] {
        make_mixer({{"type", "linear_attention"}, {"hedas", 2}}, kD, 0, DType::f32);
      },
      {"[config]", "hedas"});
  // Values of the wrong type are refused, never truncated.
  for (const json& heads : {json("2"), json(2.5), json(true), json(1e30)})
    expect_error(
        [&] {
          make_mixer({{"type", "softmax_attention"}, {"heads", heads}}, kD, 0, DType::f32);
        },
        {"[config]", "\"heads\"", "integer"});
  expect_error(
      [&] {
        make_mixer({{"type", "linear_attention"}, {"heads", 3}}, kD, 0, DType::f32);
      },
      {"[linear_attention]", "divisible"});
  expect_error(
      [&] {
        make_mixer({{"type", "linear_attention"}, {"head_dim", -4}}, kD, 0, DType::f32);
      },
      {"[config]", "\"head_dim\" is -4"});
  for (double eps : {0.0, -1e-6})
    expect_error(
        [&] {
          make_mixer({{"type", "linear_attention"}, {"eps", eps}}, kD, 0, DType::f32);
        },
        {"[config]", "\"eps\"", "positive"});
  expect_error(
      [&] {
        make_mixer({{"type", "linear_attention"}, {"local", "conv9"}}, kD, 0, DType::f32);
      },
      {"[config]", "\"local\" is \"conv9\""});
  // The recurrent baselines: hidden sizes in range, and a state of the wrong width named.
  for (const char* cell : {"lstm", "gru"}) {
    expect_error(
        [&] {
          make_mixer({{"type", cell}, {"hidden", -1}}, kD, 0, DType::f32);
        },
        {"[config]", "\"hidden\" is -1"});
    auto rnn = build({{"type", cell}}, DType::f32);
    State wide = build({{"type", cell}, {"hidden", 24}}, DType::f32)->init_state(2);
    expect_error(
        [&] {
          rnn->forward(random({2, 3, kD}, DType::f32, 1), &wide);
        },
        {fmt::format("[{}]", cell), "state h", "[2, 24]"});
  }
}
