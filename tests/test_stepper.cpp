// The tight step path of generation against the tensor step form: the same logits token by
// token (f32, within the tolerance table) for every block kind and several mixers, a stream
// moving between the two paths at any token, B batched streams bitwise equal to B single
// streams (on the tight path; to the tolerance where a tensor fallback runs), and bf16 / int8
// weights within a stated bound of f32.
#include <gtest/gtest.h>

#include <cmath>

#include "rill/models/stack_model.h"
#include "rill/ops/softmax.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

const json kDefaultMixer = {{"type", "linear_attention"}, {"heads", 4},
                            {"feature_map", "relu"},      {"normalize", false},
                            {"decay", "input"},           {"local", "shift"}};

struct ModelCase {
  std::string name;
  json config;
};

std::vector<ModelCase> cases() {
  auto model = [](json mixers, json extra = json::object()) {
    json c = {{"d_model", 32}, {"n_layers", 2}, {"mlp_hidden", 64}, {"mixers", mixers}};
    for (auto& [k, v] : extra.items()) c[k] = v;
    return c;
  };
  return {
      {"default mixer", model({kDefaultMixer})},
      {"elu, normaliser, conv3, retnet",
       model({{{"type", "linear_attention"}, {"local", "conv3"}, {"decay", "retnet"}}})},
      {"learned decay, swiglu, rms norms",
       model({{{"type", "linear_attention"}, {"decay", "learned"}}},
             {{"mlp", "swiglu"}, {"norm", "rms"}})},
      {"post-norm, untied head",
       model({kDefaultMixer}, {{"blocks", "post_norm"}, {"tie_embeddings", false}})},
      {"aaren with biases", model({{{"type", "aaren"}, {"heads", 4}, {"bias", true}}})},
      {"softmax and a GRU-gated block (tensor fallbacks)",
       model({{{"type", "softmax_attention"}, {"window", 8}}, kDefaultMixer},
             {{"blocks", {"gru_gated", "pre_norm"}}})},
  };
}

std::shared_ptr<SequenceModel> build(const json& config) {
  auto m = make_model(config, {256, 0, 256}, 7);
  m->eval();
  return m;
}

std::vector<int64_t> tokens(int64_t n, uint64_t seed) {
  std::vector<int64_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = int64_t((i * 37 + seed * 11) % 251);
  return t;
}

// The state after a prompt, through the parallel form (B streams of different prompts).
State primed(SequenceModel& m, int64_t batch) {
  NoGradGuard g;
  State s = m.init_state(batch);
  std::vector<int64_t> ids;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t id : tokens(9, uint64_t(b))) ids.push_back(id);
  m.forward(Tensor::from_vector(ids, {batch, 9}), &s);
  return s;
}

}  // namespace

TEST(Stepper, F32MatchesTheTensorStep) {
  for (const ModelCase& c : cases()) {
    auto m = build(c.config);
    State a = primed(*m, 1), b = a.clone();
    auto stepper = m->make_stepper(1, WeightFormat::f32);
    for (int64_t id : tokens(12, 3)) {
      Tensor ids = Tensor::from_vector<int64_t>({id}, {1});
      Tensor want = m->step(ids, a);
      Tensor got = stepper->step(ids, b).clone();
      EXPECT_TRUE(all_close(got, want)) << c.name << " token " << id;
    }
    // The states went the same way: the tensor step can take over from the stepper.
    for (const auto& [name, t] : a.tensors()) {
      if (is_floating(t.dtype())) {
        EXPECT_TRUE(all_close(b.get(name), t)) << c.name << " " << name;
      }
    }
  }
}

TEST(Stepper, BatchedStreamsEqualSingleStreamsBitwise) {
  for (const ModelCase& c : cases()) {
    auto m = build(c.config);
    const int64_t B = 3;
    State all = primed(*m, B);
    std::vector<State> one;
    for (int64_t b = 0; b < B; ++b) {
      State s;
      for (const auto& [name, t] : all.tensors())
        s.set(name, t.dim() > 0 && t.size(0) == B ? t.narrow(0, b, 1).clone() : t.clone());
      one.push_back(s);
    }
    auto batched = m->make_stepper(B, WeightFormat::f32);
    auto single = m->make_stepper(1, WeightFormat::f32);
    for (int step = 0; step < 6; ++step) {
      std::vector<int64_t> ids = {int64_t(step * 3 + 1), int64_t(step * 5 + 2), 200};
      Tensor logits = batched->step(Tensor::from_vector(ids, {B}), all).clone();
      for (int64_t b = 0; b < B; ++b) {
        Tensor mine = single->step(Tensor::from_vector<int64_t>({ids[b]}, {1}), one[b]);
        // The tight path computes every stream's row with the same chain of operations
        // whatever B is; the tensor fallbacks multiply through oneDNN, whose kernels for one
        // row and for three sum in other orders, so they agree to the tolerance only.
        if (c.name.find("fallbacks") == std::string::npos)
          EXPECT_TRUE(bitwise_equal(logits.narrow(0, b, 1), mine))
              << c.name << " stream " << b << " step " << step;
        else
          EXPECT_TRUE(all_close(logits.narrow(0, b, 1), mine))
              << c.name << " stream " << b << " step " << step;
      }
    }
  }
}

// bf16 keeps 8 bits of each weight (relative error 2^-9), int8 per channel 1/254 of the largest
// weight of a channel; through two layers of a small random model the log-probabilities move by
// far less than 0.05 (bf16) and 0.15 (int8) nats. Measured here: 2.3e-3 and 5.3e-3.
TEST(Stepper, ReducedPrecisionWeightsStayClose) {
  auto m = build(cases()[0].config);
  for (auto [format, bound] : {std::pair{WeightFormat::bf16, 0.05}, {WeightFormat::int8, 0.15}}) {
    State a = primed(*m, 1), b = a.clone();
    auto f32 = m->make_stepper(1, WeightFormat::f32);
    auto reduced = m->make_stepper(1, format);
    EXPECT_LT(reduced->weight_bytes(), f32->weight_bytes());
    double worst = 0;
    for (int64_t id : tokens(20, 5)) {
      Tensor ids = Tensor::from_vector<int64_t>({id}, {1});
      Tensor p = log_softmax(f32->step(ids, a).clone(), -1);
      Tensor q = log_softmax(reduced->step(ids, b).clone(), -1);
      std::vector<float> pv = p.to_vector<float>(), qv = q.to_vector<float>();
      for (size_t i = 0; i < pv.size(); ++i)
        worst = std::max(worst, double(std::abs(pv[i] - qv[i])));
    }
    std::printf("%s weights: worst log-probability difference from f32 %.2e nats\n",
                weight_format_name(format), worst);
    EXPECT_LT(worst, bound) << weight_format_name(format);
    EXPECT_GT(worst, 0) << weight_format_name(format) << " changed nothing: was it applied?";
  }
}

TEST(Stepper, BadInput) {
  auto m = build(cases()[0].config);
  auto s = m->make_stepper(2, WeightFormat::f32);
  State st = m->init_state(2);
  expect_error([&] { s->step(Tensor::from_vector<int64_t>({1}, {1}), st); }, {"[stepper]", "[2]"});
  expect_error(
      [&] {
        s->step(Tensor::from_vector<int64_t>({1, 300}, {2}), st);
      },
      {"[stepper]", "300", "vocabulary"});
  State wrong = m->init_state(1);
  expect_error([&] { s->step(Tensor::from_vector<int64_t>({1, 2}, {2}), wrong); }, {"streams"});
}
