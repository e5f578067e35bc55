// The Aaren mixer: its output is naive causal softmax attention of the projected learned query
// over the keys W_k x (formed here, where the mixer folds them away), then W_o; a long sequence
// on the chunked scan equals the step form; the state is d + 1 numbers per head and does not
// grow; the block's parameters are the transformer block's plus one d-vector (the paper's
// 3,152,384 vs 3,152,896 at d = 512, FFN 2048); bad configs. The contract suite (test_mixers)
// covers pieces, causality, resets and f64 gradients through both backends.
#include <gtest/gtest.h>

#include <cmath>

#include "rill/mixers/aaren.h"
#include "rill/mixers/registry.h"
#include "rill/models/block.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/matmul.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;

namespace {

constexpr int64_t kD = 16;

std::shared_ptr<AarenMixer> make(int64_t heads, bool bias, DType dt, int64_t head_dim = 0) {
  AarenConfig c;
  c.d_model = kD, c.heads = heads, c.head_dim = head_dim, c.bias = bias, c.seed = 4, c.dtype = dt;
  return std::make_shared<AarenMixer>(c);
}

Tensor param(const nn::Module& m, const std::string& name) {
  for (const nn::NamedParameter& p : m.named_parameters())
    if (p.name == name) return p.tensor;
  ADD_FAILURE() << "no parameter " << name;
  return Tensor();
}

// y = W_o [softmax over i <= t of (q~_h . k_i,h / sqrt(d))] v_i,h, with every product formed.
Tensor naive_aaren(const AarenMixer& m, const Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1), h = m.config.heads;
  const int64_t d = param(m, "proj.q.weight").size(0) / h;
  auto linear = [&](const std::string& which, const Tensor& in) {
    Tensor y = matmul(in, param(m, "proj." + which + ".weight").transpose(0, 1));
    return m.config.bias ? add(y, param(m, "proj." + which + ".bias")) : y;
  };
  Tensor q = linear("q", param(m, "query").view({1, kD})).view({h, 1, d});  // [H,1,d]
  Tensor k = linear("k", x).view({b, t, h, d}).transpose(1, 2);             // [B,H,T,d]
  Tensor v = linear("v", x).view({b, t, h, d}).transpose(1, 2);
  Tensor s = mul(sum(mul(k, q), {3}), 1.0 / std::sqrt(double(d)));  // [B,H,T]
  Tensor future = Tensor::zeros({t, t}, DType::i64);
  for (int64_t r = 0; r < t; ++r)
    for (int64_t c = r + 1; c < t; ++c) future.data<int64_t>()[r * t + c] = 1;
  Tensor rows = masked_fill(s.unsqueeze(2).expand({b, h, t, t}), future, -INFINITY);
  Tensor o = matmul(softmax(rows, -1), v);  // [B,H,T,d]
  return linear("o", o.transpose(1, 2).reshape({b, t, h * d}));
}

}  // namespace

TEST(Aaren, EqualsNaiveAttentionOfTheLearnedQuery) {
  for (bool bias : {false, true})
    for (Backend backend : {Backend::ref, Backend::cpu}) {
      BackendGuard guard(backend);
      auto m = make(4, bias, DType::f64);
      const Tensor x = random({2, 23, kD}, DType::f64, 5);
      EXPECT_TRUE(all_close(m->forward(x, nullptr), naive_aaren(*m, x)))
          << "bias " << bias << " " << backend_name(backend);
    }
}

// One stream of 600 tokens and 2 heads: the cpu forward chunks the scan across time.
TEST(Aaren, LongSequenceEqualsTheStepForm) {
  auto m = make(2, false, DType::f32, 6);
  const Tensor x = random({1, 600, kD}, DType::f32, 6);
  State whole = m->init_state(1), steps = m->init_state(1);
  const Tensor y = m->forward(x, &whole);
  std::vector<Tensor> outs;
  for (int64_t t = 0; t < 600; ++t) outs.push_back(m->step(x.select(1, t), steps).unsqueeze(1));
  EXPECT_TRUE(all_close(concat(outs, 1), y));
  EXPECT_TRUE(all_close(steps.get("lse"), whole.get("lse")));
  EXPECT_TRUE(all_close(steps.get("o"), whole.get("o")));
}

TEST(Aaren, StateIsHeadDimPlusOnePerHead) {
  auto m = make(4, false, DType::f32);
  const size_t per_stream = 4 * (kD / 4 + 1) * sizeof(float);
  EXPECT_EQ(m->state_bytes(0), per_stream);
  EXPECT_EQ(m->state_bytes(1 << 20), per_stream);
  State s = m->init_state(1);
  EXPECT_EQ(s.bytes(), per_stream);
  for (int64_t t = 0; t < 300; ++t) m->step(random({1, kD}, DType::f32, 100 + t), s);
  EXPECT_EQ(s.bytes(), per_stream);
  // A fresh state is the scan's identity (lse = -inf), not the paper's m0 = 0.
  EXPECT_TRUE(std::isinf(m->init_state(1).get("lse").to_vector<float>()[0]));
}

// The paper's count (aaren-crt.md 1.3): a transformer encoder block at d 512, FFN 2048, with
// biases and two LayerNorms has 3,152,384 parameters; Aaren's has one d-vector more.
TEST(Aaren, BlockHasTheTransformersParametersPlusTheQuery) {
  BlockConfig c;
  c.d_model = 512, c.mlp_hidden = 2048;
  Block aaren(c, {{"type", "aaren"}, {"heads", 8}, {"bias", true}}, 1);
  EXPECT_EQ(aaren.num_parameters(), 3152896);
  EXPECT_EQ(aaren.num_parameters() - aaren.mixer->num_parameters() + 4 * (512 * 512 + 512),
            3152384);
}

TEST(Aaren, BadConfig) {
  expect_error(
      [] {
        make_mixer({{"type", "aaren"}, {"heads", 3}}, kD, 1, DType::f32);
      },
      {"aaren", "divisible"});
  expect_error(
      [] {
        make_mixer({{"type", "aaren"}, {"window", 3}}, kD, 1, DType::f32);
      },
      {"aaren", "window"});
  expect_error(
      [] {
        make_mixer({{"type", "aaren"}, {"heads", 0}}, kD, 1, DType::f32);
      },
      {"aaren", "heads"});
}
