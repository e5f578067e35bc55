// The Block-Recurrent Transformer model (rill/models/block_recurrent.h): segment form equals step
// form for every gate and cell, segmentation invariance, causality, the state's updates (one per
// block, N / W per segment), resets at a document start, f64 gradients through the cpu kernels,
// gradients that cross blocks but not segments, a bounded state over 100 segments, constant
// state bytes, and config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "rill/autograd/grad_mode.h"
#include "rill/models/block_recurrent.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/reduce.h"
#include "tests/support/states.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

constexpr int64_t kW = 4, kVocab = 11;

json tiny(const std::string& gate = "fixed", const std::string& cell = "skip",
          const std::string& dtype = "f64") {
  return {{"type", "block_recurrent"},
          {"d_model", 16},
          {"n_layers", 3},
          {"heads", 2},
          {"mlp_hidden", 24},
          {"window", kW},
          {"states", 3},
          {"recurrent_layers", {1}},
          {"gate", gate},
          {"cell", cell},
          {"num_buckets", 8},
          {"max_distance", 16},
          {"dtype", dtype}};
}

std::shared_ptr<BlockRecurrentModel> make(const json& c, uint64_t seed = 7) {
  auto m = std::dynamic_pointer_cast<BlockRecurrentModel>(make_model(c, {kVocab, 0, kVocab}, seed));
  EXPECT_TRUE(m) << "make_model did not build a BlockRecurrentModel";
  return m;
}

Tensor ids(int64_t batch, int64_t len, uint64_t seed) {
  return Tensor::randint({batch, len}, 0, kVocab, seed, DType::i64);
}

std::vector<std::pair<std::string, std::string>> all_cells() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* g : {"fixed", "lstm"})
    for (const char* c : {"skip", "single", "dual"}) out.emplace_back(g, c);
  return out;
}

}  // namespace

// Token by token (the step form, from a warm state) gives the segment form's outputs and final
// state, for each gate and cell configuration, over 6 blocks starting mid-block.
TEST(BlockRecurrent, SegmentFormEqualsStepForm) {
  NoGradGuard no_grad;
  for (const auto& [gate, cell] : all_cells()) {
    const std::string what = gate + ":" + cell;
    auto m = make(tiny(gate, cell));
    State warm = m->init_state(2);
    m->forward(ids(2, 3, 1), &warm);  // the clock now sits mid-block
    const Tensor x = ids(2, 24, 2);
    State seg = warm.clone();
    const Tensor y = m->forward(x, &seg);
    State st = warm.clone();
    for (int64_t t = 0; t < x.size(1); ++t)
      EXPECT_TRUE(all_close(m->step(x.select(1, t), st), y.select(1, t))) << what << " t " << t;
    expect_states_close(seg, st, what);
  }
}

// Cutting a document into segments of different lengths (multiples of W, and any others) with
// the state carried gives the outputs of one segment.
TEST(BlockRecurrent, SegmentationInvariance) {
  NoGradGuard no_grad;
  for (const char* cell : {"skip", "dual"}) {
    auto m = make(tiny("lstm", cell));
    const Tensor x = ids(2, 32, 3);
    State whole = m->init_state(2);
    const Tensor y = m->forward(x, &whole);
    for (const std::vector<int64_t>& cuts :
         {std::vector<int64_t>{8, 24}, {16}, {4, 8, 12, 28}, {5, 7, 19}}) {
      State s = m->init_state(2);
      std::vector<Tensor> parts;
      int64_t t0 = 0;
      for (size_t i = 0; i <= cuts.size(); ++i) {
        const int64_t t1 = i < cuts.size() ? cuts[i] : x.size(1);
        parts.push_back(m->forward(x.narrow(1, t0, t1 - t0), &s));
        t0 = t1;
      }
      EXPECT_TRUE(all_close(concat(parts, 1), y)) << cell << " cut at " << cuts[0];
      expect_states_close(s, whole, std::string(cell) + " pieces");
    }
  }
}

// Changing token t leaves every output before t unchanged (a token must not read the state its
// own block writes), and does change later ones; in the recurrent model a change reaches far
// beyond what the stacked windows can see (3 layers x W tokens), in Slide it does not.
TEST(BlockRecurrent, CausalAndTheStateCarriesBeyondTheWindows) {
  NoGradGuard no_grad;
  const int64_t len = 32;
  for (bool recurrent : {true, false}) {
    json c = tiny();
    if (!recurrent) c["recurrent_layers"] = json::array();
    auto m = make(c);
    const Tensor x = ids(1, len, 4);
    const Tensor y = m->forward(x, nullptr);
    for (int64_t t : {0, 3, 4, 9, 15}) {
      Tensor x2 = x.clone();
      x2.select(1, t).fill_(double((x.select(1, t).item<int64_t>() + 1) % kVocab));
      const Tensor y2 = m->forward(x2, nullptr);
      if (t > 0)
        EXPECT_TRUE(bitwise_equal(y2.narrow(1, 0, t), y.narrow(1, 0, t)))
            << "recurrent " << recurrent << ": outputs before " << t << " changed";
      EXPECT_FALSE(all_close(y2.narrow(1, t, 1), y.narrow(1, t, 1)))
          << "recurrent " << recurrent << ": the changed token's own output did not change";
    }
    // Token 0 against the last token, 31 positions later: beyond 3 windows of 4.
    Tensor x2 = x.clone();
    x2.select(1, 0).fill_(double((x.select(1, 0).item<int64_t>() + 1) % kVocab));
    const Tensor far = m->forward(x2, nullptr).select(1, len - 1);
    if (recurrent)
      EXPECT_FALSE(all_close(far, y.select(1, len - 1))) << "the state did not carry token 0";
    else
      EXPECT_TRUE(bitwise_equal(far, y.select(1, len - 1))) << "Slide saw beyond its windows";
  }
}

// One sliding-window layer sees exactly itself and the W tokens before it, across a call
// boundary (the cached keys) and at every phase of the block clock.
TEST(BlockRecurrent, WindowSpansItselfAndTheWTokensBefore) {
  NoGradGuard no_grad;
  json c = tiny();
  c["n_layers"] = 1, c["recurrent_layers"] = json::array();
  auto m = make(c);
  const int64_t len = 24;
  const Tensor x = ids(1, len, 12);
  auto run = [&](const Tensor& in) {
    State s = m->init_state(1);
    const Tensor a = m->forward(in.narrow(1, 0, 10), &s);  // a cut inside a block
    return concat({a, m->forward(in.narrow(1, 10, len - 10), &s)}, 1);
  };
  const Tensor y = run(x);
  for (int64_t t = kW + 1; t < len; ++t) {
    for (int64_t back : {kW, kW + 1}) {
      Tensor x2 = x.clone();
      const int64_t u = t - back;
      x2.select(1, u).fill_(double((x.select(1, u).item<int64_t>() + 1) % kVocab));
      const bool same = bitwise_equal(run(x2).select(1, t), y.select(1, t));
      EXPECT_EQ(same, back > kW) << "token " << t << " and token " << u;
    }
  }
}

// The state changes at the end of every block and nowhere else: N / W updates per segment.
TEST(BlockRecurrent, StateUpdatesOncePerBlock) {
  NoGradGuard no_grad;
  for (const auto& [gate, cell] : all_cells()) {
    auto m = make(tiny(gate, cell));
    const int64_t n = 16;
    const Tensor x = ids(2, n, 5);
    State s = m->init_state(2);
    int updates = 0;
    for (int64_t t = 0; t < n; ++t) {
      const Tensor before = s.get("layers.1.cell").clone();
      m->step(x.select(1, t), s);
      const bool changed = !bitwise_equal(s.get("layers.1.cell"), before);
      EXPECT_EQ(changed, (t + 1) % kW == 0) << gate << ":" << cell << " token " << t;
      updates += changed;
    }
    EXPECT_EQ(updates, n / kW) << gate << ":" << cell;
    // The segment form makes the same N / W updates in one call.
    State seg = m->init_state(2);
    m->forward(x, &seg);
    EXPECT_TRUE(all_close(seg.get("layers.1.cell"), s.get("layers.1.cell"))) << gate << cell;
  }
}

// A reset at a document start (a block boundary) gives the stream the initial state and hides
// its cache: from there it computes what a fresh stream computes, and the other stream is
// untouched. The step form with resets agrees, also for a reset inside a block, after which the
// state is the learned initial state until the block ends.
TEST(BlockRecurrent, ResetAtDocumentStartRestoresInitialStateAndCache) {
  NoGradGuard no_grad;
  auto m = make(tiny("lstm", "dual"));
  const int64_t len = 20, at = 8;
  const Tensor x = ids(2, len, 6);
  State warm = m->init_state(2);
  m->forward(ids(2, 12, 7), &warm);
  Tensor resets = Tensor::zeros({2, len}, DType::f64);
  resets.select(0, 1).select(0, at).fill_(1.0);
  State s = warm.clone();
  const Tensor y = m->forward_with_resets(x, &s, resets);
  State plain = warm.clone();
  const Tensor y0 = m->forward(x, &plain);
  EXPECT_TRUE(all_close(y.select(0, 0), y0.select(0, 0))) << "the stream that did not reset";
  EXPECT_FALSE(
      all_close(y.select(0, 1).narrow(0, at, len - at), y0.select(0, 1).narrow(0, at, len - at)));
  // A fresh stream whose clock matches (12 + 8 tokens: a block boundary), fed the rest.
  State fresh = m->init_state(2);
  fresh.set("pos", Tensor::full({2}, 20, DType::i64));
  fresh.set("start", Tensor::full({2}, 20, DType::i64));
  const Tensor want = m->forward(x.narrow(1, at, len - at), &fresh).select(0, 1);
  EXPECT_TRUE(all_close(y.select(0, 1).narrow(0, at, len - at), want));
  // Step form, with a second reset inside a block.
  resets.select(0, 0).select(0, 5).fill_(1.0);
  State a = warm.clone();
  const Tensor ya = m->forward_with_resets(x, &a, resets);
  State b = warm.clone();
  for (int64_t t = 0; t < len; ++t) {
    const Tensor o = m->step_with_resets(x.select(1, t), b, resets.select(1, t));
    EXPECT_TRUE(all_close(o, ya.select(1, t))) << "step " << t;
    if (t == 5)  // stream 0 reset at 5 (block ends at 8): its state is the initial one
      EXPECT_TRUE(all_close(b.get("layers.1.cell").select(0, 0), m->layers[1]->initial_state));
  }
  expect_states_close(a, b, "resets");
}

// f64 central differences through the cpu kernels (and the ref oracle) for the gates, the state
// IDs, the initial state and the rest of the recurrent layer, with the loss through the outputs
// and the final state, over two blocks and a half from a fresh state.
TEST(BlockRecurrent, GradientsOfGatesStateIdsAndInitialState) {
  for (const auto& [gate, cell] : all_cells()) {
    json c = tiny(gate, cell);
    c["d_model"] = 8, c["mlp_hidden"] = 8, c["states"] = 2, c["window"] = 2, c["n_layers"] = 2;
    auto m = make(c);
    const Tensor x = ids(1, 5, 8);
    for (Backend backend : {Backend::ref, Backend::cpu}) {
      BackendGuard guard(backend);
      // The recurrent layer's parameters (gates, state IDs, initial state, the state path and
      // its window attention) and the embedding: the other layers are the same window layer.
      std::vector<Tensor> wrt = m->layers[1]->parameters();
      wrt.push_back(m->embed->weight);
      gradcheck_leaves(
          [&] {
            State s = m->init_state(1);  // the cell is the initial state on the tape
            const Tensor y = m->forward(x, &s);
            return concat({y.reshape({-1}), s.get("layers.1.cell").reshape({-1})}, 0);
          },
          wrt, gate + ":" + cell, backend);
    }
  }
}

// Gradients flow across blocks inside a segment (through the state: token 0 reaches the last
// token 31 positions on) but not across segments (the carried state is detached, as the trainer
// does): a loss on the second segment leaves no gradient on the initial state or on a token that
// only the first segment holds.
TEST(BlockRecurrent, GradientsCrossBlocksButNotSegments) {
  json c = tiny("fixed", "skip");
  c["tie_embeddings"] = false;  // a tied head would give every embedding row a gradient
  auto m = make(c);
  Tensor x = ids(1, 64, 9);
  for (int64_t t = 0; t < 64; ++t)
    if (x.select(1, t).item<int64_t>() == 0) x.select(1, t).fill_(1.0);
  x.select(1, 0).fill_(0.0);  // token 0 appears once, at position 0
  auto grad_of = [&](const Tensor& p) {
    return p.grad().defined() ? max(abs(p.grad())).item<double>() : 0.0;
  };
  State s = m->init_state(1);
  m->zero_grad();
  sum(m->forward(x.narrow(1, 0, 32), &s).select(1, 31)).backward();
  EXPECT_GT(grad_of(m->layers[1]->initial_state), 0) << "no gradient through the blocks";
  EXPECT_GT(max(abs(m->embed->weight.grad().select(0, 0))).item<double>(), 0)
      << "token 0 does not reach token 31 of its segment";
  s.detach();
  m->zero_grad();
  sum(m->forward(x.narrow(1, 32, 32), &s)).backward();
  EXPECT_EQ(grad_of(m->layers[1]->initial_state), 0) << "gradient crossed the segment boundary";
  EXPECT_EQ(max(abs(m->embed->weight.grad().select(0, 0))).item<double>(), 0)
      << "token 0 of the first segment got a gradient from the second";
  EXPECT_GT(grad_of(m->layers[1]->state_ids), 0);
}

// The state's norm stays bounded over 100 segments of random tokens (the gates mix, they do not
// add), for both gates, and the state bytes never change over 10,000 steps.
TEST(BlockRecurrent, StateStaysBoundedAndConstantInSize) {
  NoGradGuard no_grad;
  for (const char* gate : {"fixed", "lstm"}) {
    auto m = make(tiny(gate, "dual", "f32"));
    State s = m->init_state(2);
    double first = 0, worst = 0;
    for (int seg = 0; seg < 100; ++seg) {
      m->forward(ids(2, 16, 100 + seg), &s);
      const double norm =
          std::sqrt(sum(s.get("layers.1.cell") * s.get("layers.1.cell")).item<double>());
      ASSERT_TRUE(std::isfinite(norm)) << gate << " segment " << seg;
      if (seg < 10) first = std::max(first, norm);
      worst = std::max(worst, norm);
    }
    EXPECT_LT(worst, 2 * first) << gate << ": the state grew over 100 segments";
  }
  auto m = make(tiny("fixed", "skip", "f32"));
  State s = m->init_state(1);
  const size_t bytes = s.bytes();
  EXPECT_EQ(bytes, m->info(1 << 20).state_bytes);
  const std::vector<int64_t> stream = ids(1, 10000, 11).to_vector<int64_t>();
  for (int64_t t = 0; t < 10000; ++t) {
    m->step(Tensor::from_vector(std::vector<int64_t>{stream[size_t(t)]}, {1}), s);
    ASSERT_EQ(s.bytes(), bytes) << "step " << t;
  }
}

TEST(BlockRecurrent, ConfigErrorsNameTheProblem) {
  auto with = [](const char* key, const json& v) {
    json c = tiny();
    c[key] = v;
    return c;
  };
  const ModelIO io{kVocab, 0, kVocab};
  expect_error([&] { make_model(with("recurrent_layers", {3}), io, 0); },
               {"recurrent layer 3", "not a layer of 3"});
  expect_error([&] { make_model(with("recurrent_layers", {1, -2}), io, 0); }, {"twice"});
  expect_error([&] { make_model(with("gate", "gru"), io, 0); }, {"gate", "gru"});
  expect_error([&] { make_model(with("cell", "triple"), io, 0); }, {"triple"});
  expect_error([&] { make_model(with("window", 0), io, 0); }, {"window"});
  expect_error([&] { make_model(with("windows", 4), io, 0); }, {"windows"});
  expect_error([&] { make_model(tiny(), {0, 5, 3}, 0); }, {"token ids", "in_features"});
  auto m = make(tiny());
  expect_error([&] { m->forward(Tensor::zeros({2, 3}, DType::f64), nullptr); }, {"token ids"});
  State s = m->init_state(2);
  s.set("pos", Tensor::from_vector(std::vector<int64_t>{4, 5}, {2}));
  expect_error([&] { m->forward(ids(2, 3, 1), &s); }, {"one block clock"});
}
