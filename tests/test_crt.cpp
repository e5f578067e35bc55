// The Compact Recurrent Transformer (rill/models/crt.h): segment form equals step form for every
// memory cell, summary and position scheme; any cut of a stream gives the same outputs;
// causality, and the memory as the only path across segments; resets; f64 gradients of the GRU
// and NC-GRU memory paths through the cpu kernels; how far gradients flow back (bptt_segments);
// constant state bytes and a bounded memory; the cost model; a cross-segment recall task that
// CRT learns and CRT with a cleared memory cannot; config errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "rill/autograd/grad_mode.h"
#include "rill/models/crt.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"
#include "rill/optim/adamw.h"
#include "tests/support/states.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

constexpr int64_t kL = 4, kVocab = 11;

json tiny(const std::string& memory = "gru", const std::string& summary = "last",
          const std::string& positions = "rotary", const std::string& dtype = "f64") {
  json c = {{"type", "crt"}, {"segment", kL},    {"d_model", 16},    {"n_layers", 2},
            {"heads", 2},    {"mlp_hidden", 24}, {"memory", memory}, {"positions", positions},
            {"dtype", dtype}};
  if (memory != "none") c["summary"] = summary;
  return c;
}

std::shared_ptr<CrtModel> make(const json& c, uint64_t seed = 7, int64_t vocab = kVocab) {
  auto m = std::dynamic_pointer_cast<CrtModel>(make_model(c, {vocab, 0, vocab}, seed));
  EXPECT_TRUE(m) << "make_model did not build a CrtModel";
  return m;
}

Tensor ids(int64_t batch, int64_t len, uint64_t seed) {
  return Tensor::randint({batch, len}, 0, kVocab, seed, DType::i64);
}

// Every memory x summary pair, and the position schemes on one of them.
std::vector<json> all_configs() {
  std::vector<json> out;
  for (const char* memory : {"gru", "nc_gru"})
    for (const char* summary : {"last", "write", "rnn"}) out.push_back(tiny(memory, summary));
  out.push_back(tiny("none"));
  out.push_back(tiny("gru", "write", "learned"));
  out.push_back(tiny("nc_gru", "last", "none"));
  json cleared = tiny("gru", "rnn");
  cleared["clear_memory"] = true;
  out.push_back(cleared);
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item<double>(); }

}  // namespace

// Token by token (the step form, from a warm state in mid-segment) gives the segment form's
// outputs and final state, for every configuration, over 6 segments.
TEST(Crt, SegmentFormEqualsStepForm) {
  NoGradGuard no_grad;
  for (const json& c : all_configs()) {
    const std::string what = c.dump();
    auto m = make(c);
    State warm = m->init_state(2);
    m->forward(ids(2, 3, 1), &warm);  // the clock now sits mid-segment
    const Tensor x = ids(2, 6 * kL, 2);
    State seg = warm.clone();
    const Tensor y = m->forward(x, &seg);
    State st = warm.clone();
    for (int64_t t = 0; t < x.size(1); ++t)
      ASSERT_TRUE(all_close(m->step(x.select(1, t), st), y.select(1, t))) << what << " t " << t;
    expect_states_close(seg, st, what);
  }
}

// Cutting a stream into calls of any lengths, with the state carried, gives one call's outputs.
TEST(Crt, SegmentationInvariance) {
  NoGradGuard no_grad;
  for (const json& c : {tiny("gru", "write"), tiny("nc_gru", "rnn"), tiny("none")}) {
    auto m = make(c);
    const Tensor x = ids(2, 5 * kL, 3);
    State whole = m->init_state(2);
    const Tensor y = m->forward(x, &whole);
    for (const std::vector<int64_t>& cuts :
         {std::vector<int64_t>{kL, 3 * kL}, {2 * kL}, {1, 2, 7, 13}, {5, 6}}) {
      State s = m->init_state(2);
      std::vector<Tensor> parts;
      int64_t t0 = 0;
      for (size_t i = 0; i <= cuts.size(); ++i) {
        const int64_t t1 = i < cuts.size() ? cuts[i] : x.size(1);
        parts.push_back(m->forward(x.narrow(1, t0, t1 - t0), &s));
        t0 = t1;
      }
      EXPECT_TRUE(all_close(concat(parts, 1), y)) << c.dump() << " cut at " << cuts[0];
      expect_states_close(s, whole, c.dump() + " pieces");
    }
  }
}

// Changing token t leaves every output before t unchanged and changes later ones in its segment.
// Beyond its segment, only the memory carries it: CRT's later segments change, those of CRT with
// a cleared memory and of the plain segment transformer are bitwise the same.
TEST(Crt, CausalAndOnlyTheMemoryCrossesSegments) {
  NoGradGuard no_grad;
  json cleared = tiny("gru", "last");
  cleared["clear_memory"] = true;
  for (const json& c :
       {tiny("gru", "last"), tiny("nc_gru", "write"), tiny("gru", "rnn"), cleared, tiny("none")}) {
    const bool carries = c["memory"] != "none" && !c.value("clear_memory", false);
    auto m = make(c);
    const Tensor x = ids(1, 3 * kL, 4);
    Tensor x2 = x.clone();
    const int64_t t = 1;
    x2.select(1, t).fill_(double((x.select(1, t).item<int64_t>() + 1) % kVocab));
    const Tensor y = m->forward(x, nullptr), y2 = m->forward(x2, nullptr);
    EXPECT_EQ(max_abs_diff(y.narrow(1, 0, t), y2.narrow(1, 0, t)), 0) << c.dump();
    EXPECT_GT(max_abs_diff(y.narrow(1, t, kL - t), y2.narrow(1, t, kL - t)), 1e-9) << c.dump();
    const double later = max_abs_diff(y.narrow(1, kL, 2 * kL), y2.narrow(1, kL, 2 * kL));
    if (carries)
      EXPECT_GT(later, 1e-9) << c.dump() << ": the memory did not carry the change";
    else
      EXPECT_EQ(later, 0) << c.dump() << ": something besides the memory crosses segments";
  }
}

// The memory changes exactly once per segment, at its end: L tokens of a segment leave it as it
// was until the last one.
TEST(Crt, MemoryUpdatesOncePerSegment) {
  NoGradGuard no_grad;
  for (const char* summary : {"last", "write", "rnn"}) {
    auto m = make(tiny("gru", summary));
    State s = m->init_state(1);
    const Tensor x = ids(1, 3 * kL, 5);
    int64_t updates = 0;
    for (int64_t t = 0; t < x.size(1); ++t) {
      const Tensor before = s.get("memory").clone();
      m->step(x.select(1, t), s);
      const bool changed = max_abs_diff(before, s.get("memory")) > 0;
      EXPECT_EQ(changed, (t + 1) % kL == 0) << summary << " t " << t;
      updates += changed;
    }
    EXPECT_EQ(updates, 3) << summary;
  }
}

// A reset at a segment start makes the stream exactly a fresh one (outputs and state), leaving
// the other stream untouched; inside a segment the stream reads the initial memory and none of
// the segment's earlier tokens; the step form with resets agrees with the segment form.
TEST(Crt, ResetsAtDocumentStarts) {
  NoGradGuard no_grad;
  for (const json& c : {tiny("gru", "write"), tiny("nc_gru", "rnn"), tiny("none")}) {
    auto m = make(c);
    const Tensor x = ids(2, 4 * kL, 6);
    for (int64_t at : {2 * kL, 2 * kL + 1}) {
      Tensor resets = Tensor::zeros({2, x.size(1)}, DType::f32);
      resets.select(0, 1).select(0, at).fill_(1.0);
      State s = m->init_state(2);
      const Tensor y = m->forward_with_resets(x, &s, resets);
      // Stream 0 never resets: as without resets.
      EXPECT_TRUE(all_close(y.select(0, 0), m->forward(x, nullptr).select(0, 0))) << c.dump();
      const Tensor after = y.select(0, 1).narrow(0, at, x.size(1) - at);
      if (at % kL == 0) {
        // At a segment start, stream 1 from the reset on is exactly a fresh stream.
        const Tensor tail = x.select(0, 1).narrow(0, at, x.size(1) - at).reshape({1, -1});
        EXPECT_TRUE(all_close(after, m->forward(tail, nullptr).select(0, 0))) << c.dump();
      }
      // Stream 1 from the reset on does not depend on anything before it.
      Tensor x2 = x.clone();
      x2.select(0, 1).narrow(0, 0, at).copy_(ids(1, at, 60).select(0, 0));
      const Tensor y2 = m->forward_with_resets(x2, nullptr, resets);
      EXPECT_TRUE(all_close(y2.select(0, 1).narrow(0, at, x.size(1) - at), after))
          << c.dump() << " reset at " << at << ": the stream still sees what came before";
      // Step form with resets.
      State st = m->init_state(2);
      for (int64_t t = 0; t < x.size(1); ++t)
        ASSERT_TRUE(
            all_close(m->step_with_resets(x.select(1, t), st, resets.select(1, t)), y.select(1, t)))
            << c.dump() << " step " << t << " reset at " << at;
      expect_states_close(s, st, c.dump());
    }
  }
}

// f64 central differences through the cpu kernels and the ref oracle: the memory cell (GRU and
// NC-GRU, whose W_c comes from the solve), the initial memory, the write embedding and the
// embedding, with the loss through the outputs and the final memory, over two segments and a half.
TEST(Crt, GradientsOfTheMemoryPaths) {
  for (const char* memory : {"gru", "nc_gru"})
    for (const char* summary : {"last", "write", "rnn"}) {
      json c = tiny(memory, summary);
      c["d_model"] = 6, c["mlp_hidden"] = 8, c["heads"] = 1, c["segment"] = 2;
      if (std::string(memory) == "nc_gru") c["negative_ones"] = 2;
      auto m = make(c);
      const Tensor x = ids(1, 5, 8);
      for (Backend backend : {Backend::ref, Backend::cpu}) {
        BackendGuard guard(backend);
        std::vector<Tensor> wrt = m->memory_cell_parameters();
        wrt.push_back(m->initial_memory);
        if (m->write_embedding.defined()) wrt.push_back(m->write_embedding);
        wrt.push_back(m->embed->weight);
        gradcheck_leaves(
            [&] {
              State s = m->init_state(1);
              const Tensor y = m->forward(x, &s);
              return concat({y.reshape({-1}), s.get("memory").reshape({-1})}, 0);
            },
            wrt, std::string(memory) + ":" + summary, backend);
      }
    }
}

// bptt_segments: over 4 segments with the loss on the last, 0 lets it reach a token of the
// first; 1 detaches the memory at every segment start (nothing reaches back); 2 cuts before
// segments 0 and 2, so the third segment is reached and the first is not.
TEST(Crt, HowFarGradientsFlowBack) {
  for (int64_t bptt : {0, 1, 2}) {
    json c = tiny("gru", "last");
    c["tie_embeddings"] = false;  // a tied head would give every embedding row a gradient
    c["bptt_segments"] = bptt;
    auto m = make(c);
    Tensor x = ids(1, 4 * kL, 9);
    for (int64_t t = 0; t < x.size(1); ++t)
      if (x.select(1, t).item<int64_t>() <= 1) x.select(1, t).fill_(2.0);
    x.select(1, 0).fill_(0.0);       // token 0 only in segment 0
    x.select(1, 2 * kL).fill_(1.0);  // token 1 only in segment 2
    m->zero_grad();
    sum(m->forward(x, nullptr).narrow(1, 3 * kL, kL)).backward();
    const Tensor g = m->embed->weight.grad();
    const double to_first = max(abs(g.select(0, 0))).item<double>();
    const double to_third = max(abs(g.select(0, 1))).item<double>();
    EXPECT_EQ(to_first > 0, bptt == 0) << "bptt " << bptt << ": " << to_first;
    EXPECT_EQ(to_third > 0, bptt != 1) << "bptt " << bptt << ": " << to_third;
  }
}

// The state's bytes never change over 10,000 steps (the KV cache is bounded by the segment) and
// the GRU memory stays in (-1, 1).
TEST(Crt, StateIsConstantInSizeAndTheMemoryBounded) {
  NoGradGuard no_grad;
  for (const char* memory : {"gru", "nc_gru"}) {
    auto m = make(tiny(memory, "last", "rotary", "f32"));
    State s = m->init_state(1);
    const size_t bytes = s.bytes();
    EXPECT_EQ(m->info(1 << 20).state_bytes, bytes);
    EXPECT_TRUE(m->info(1 << 20).constant_state);
    const Tensor x = ids(1, 10000, 10);
    double largest = 0;
    for (int64_t t = 0; t < x.size(1); ++t) {
      m->step(x.select(1, t), s);
      ASSERT_EQ(s.bytes(), bytes) << memory << " step " << t;
      largest = std::max(largest, max(abs(s.get("memory"))).item<double>());
    }
    EXPECT_TRUE(std::isfinite(largest)) << memory;
    if (std::string(memory) == "gru") {
      EXPECT_LT(largest, 1.0);
    }
  }
}

// The cost model: FLOPs per token counted by hand for a small configuration, with and without
// the memory.
TEST(Crt, FlopsPerToken) {
  json c = tiny("gru", "last", "rotary", "f32");
  auto m = make(c);
  const double d = 16, f = 24, L = kL, v = kVocab;
  auto row = [&](double keys) { return 2 * 4 * d * d + 2 * 2 * d * f + 2 * 2 * keys * d; };
  const double gru = 2 * (3 * d * d + 3 * d * d);
  const double expected = 2 * d * v + 2 * row(1 + (L + 1) / 2) + (2 * row(1) + gru) / L;
  EXPECT_NEAR(m->info(1024).flops_per_token, expected, 1e-9 * expected);
  // The plain segment transformer: no memory slot, no cell.
  auto plain = make(tiny("none", "last", "rotary", "f32"));
  const double plain_expected = 2 * d * v + 2 * row((L + 1) / 2);
  EXPECT_NEAR(plain->info(1024).flops_per_token, plain_expected, 1e-9 * plain_expected);
}

// A key in segment 1, recalled 2 segments later: CRT learns it in 200 steps with either cell and
// every summary (accuracy far above the chance of 1 in 4); CRT with its memory cleared every
// segment stays at chance (nothing else crosses).
TEST(Crt, CrossSegmentRecall) {
  constexpr int64_t keys = 4, filler = 6, query = keys + filler, vocab = query + 1;
  constexpr int64_t seg = 4, len = 3 * seg, batch = 32;
  // Token 0: the key; then filler; the last token: the query, whose next token is the key.
  auto batch_of = [&](uint64_t seed) {
    Tensor x = Tensor::randint({batch, len}, keys, keys + filler, seed, DType::i64);
    const Tensor k = Tensor::randint({batch}, 0, keys, seed + 1, DType::i64);
    for (int64_t b = 0; b < batch; ++b) {
      x.select(0, b).select(0, 0).fill_(double(k.select(0, b).item<int64_t>()));
      x.select(0, b).select(0, len - 1).fill_(double(query));
    }
    return std::make_pair(x, k);
  };
  auto accuracy_after_training = [&](const char* memory, const char* summary, bool clear) {
    const json c = {{"type", "crt"},    {"segment", seg},     {"d_model", 32},
                    {"n_layers", 1},    {"heads", 2},         {"mlp_hidden", 64},
                    {"memory", memory}, {"summary", summary}, {"clear_memory", clear}};

    auto m = make(c, 3, vocab);
    optim::AdamW opt(optim::param_groups(*m, 0.0), 3e-3);
    for (int step = 0; step < 200; ++step) {
      auto [x, k] = batch_of(1000 + 2 * uint64_t(step));
      opt.zero_grad();
      const Tensor logits = m->forward(x, nullptr).select(1, len - 1);  // [B, V]
      cross_entropy(logits, k).backward();
      opt.step();
    }
    NoGradGuard no_grad;
    int64_t right = 0, total = 0;
    for (uint64_t e = 0; e < 8; ++e) {
      auto [x, k] = batch_of(90000 + 2 * e);
      const auto logits = m->forward(x, nullptr).select(1, len - 1).contiguous().to_vector<float>();
      const auto want = k.to_vector<int64_t>();
      for (int64_t b = 0; b < batch; ++b) {
        const auto row = logits.begin() + b * vocab;
        right += std::max_element(row, row + vocab) - row == want[size_t(b)];
        ++total;
      }
    }
    return double(right) / double(total);
  };
  for (const char* memory : {"gru", "nc_gru"})
    for (const char* summary : {"last", "write", "rnn"})
      EXPECT_GT(accuracy_after_training(memory, summary, false), 0.9)
          << memory << ":" << summary << " did not carry the key across two segments";
  EXPECT_LT(accuracy_after_training("gru", "last", true), 0.4)
      << "the cleared memory recalled the key: something else crosses segments";
}

TEST(Crt, ConfigErrorsNameTheProblem) {
  auto with = [](json c, const char* key, const json& v) {
    c[key] = v;
    return c;
  };
  const ModelIO io{kVocab, 0, kVocab};
  auto err = [&](const json& c, const std::vector<std::string>& parts) {
    expect_error([&] { make_model(c, io, 1); }, parts);
  };
  const json c = tiny();
  err(with(c, "segment", 0), {"segment", "between 1 and 65536"});
  err(with(c, "memory", "lstm"), {"memory", "lstm", "gru, nc_gru, none"});
  err(with(c, "summary", "slot"), {"summary", "slot", "last, write, rnn"});
  err(with(c, "positions", "alibi"), {"positions", "alibi"});
  err(with(c, "bptt_segments", -1), {"bptt_segments"});
  err(with(c, "negative_ones", 2), {"negative_ones", "nc_gru"});
  err(with(with(c, "memory", "nc_gru"), "negative_ones", 17),
      {"negative_ones", "between 0 and d_model"});
  err(with(tiny("none"), "clear_memory", true), {"none", "clear_memory"});
  err(with(c, "heads", 3), {"d_model 16", "heads 3"});
  err(with(c, "windw", 3), {"windw"});
  expect_error([&] { make_model(c, {0, 5, 3}, 0); }, {"token ids", "in_features"});
  auto m = make(c);
  expect_error([&] { m->forward(Tensor::zeros({2, 3}, DType::f64), nullptr); }, {"token ids"});
  State s = m->init_state(2);
  s.set("pos", Tensor::from_vector(std::vector<int64_t>{4, 5}, {2}));
  expect_error([&] { m->forward(ids(2, 3, 1), &s); }, {"one segment clock"});
  State s2 = m->init_state(2);
  s2.set("memory", Tensor::zeros({2, 15}, DType::f64));
  expect_error([&] { m->forward(ids(2, 3, 1), &s2); }, {"memory", "[2, 15]"});
}
