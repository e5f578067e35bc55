// Resets through a whole model (the RL setting: episodes end inside a batch of streams): for a
// block stack over each recurrent family, forward_with_resets equals running every stream's
// pieces separately from a fresh state, and step_with_resets token by token equals it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "rill/autograd/grad_mode.h"
#include "rill/models/sequence_model.h"
#include "rill/ops/index.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

std::vector<json> model_configs() {
  const std::vector<json> mixers = {
      {{"type", "linear_attention"}, {"heads", 2}, {"decay", "input"}, {"local", "shift"}},
      {{"type", "relit"}, {"heads", 2}, {"eta", 2}, {"chunk", 8}},
      {{"type", "arelit"}, {"heads", 2}, {"eta", 2}, {"r", 4}},
      {{"type", "transformer_xl"}, {"heads", 2}, {"memory", 6}},
      {{"type", "lstm"}}};
  std::vector<json> out;
  for (const json& m : mixers)
    out.push_back({{"type", "stack"},
                   {"d_model", 16},
                   {"n_layers", 2},
                   {"mlp_hidden", 16},
                   {"blocks", "gru_gated"},
                   {"dtype", "f64"},
                   {"mixers", {m}}});
  return out;
}

}  // namespace

TEST(ModelResets, ForwardAndStepEqualSeparateEpisodes) {
  const ModelIO io{0, 5, 3};
  const int64_t len = 30;
  const std::vector<std::vector<int64_t>> cuts = {{12}, {0, 20}};  // per stream
  for (const json& c : model_configs()) {
    NoGradGuard no_grad;
    auto m = make_model(c, io, 7);
    const std::string what = c["mixers"][0]["type"];
    Tensor x = random({2, len, 5}, DType::f64, 8);
    State warm = m->init_state(2);
    m->forward(random({2, 4, 5}, DType::f64, 9), &warm);  // streams arrive with some history
    Tensor resets = Tensor::zeros({2, len}, DType::f64);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t : cuts[b]) resets.select(0, b).select(0, t).fill_(1.0);
    State s = warm.clone();
    Tensor y = m->forward_with_resets(x, &s, resets);
    // Each stream alone: its pieces, the first from its own warm state unless it resets at 0.
    for (int64_t b = 0; b < 2; ++b) {
      std::vector<int64_t> starts{0};
      for (int64_t t : cuts[b])
        if (t > 0) starts.push_back(t);
      for (size_t i = 0; i < starts.size(); ++i) {
        const int64_t t0 = starts[i], t1 = i + 1 < starts.size() ? starts[i + 1] : len;
        State lane = m->init_state(2);
        if (i == 0 && cuts[b][0] != 0) lane = warm.clone();
        Tensor want = m->forward(x.narrow(1, t0, t1 - t0), &lane).select(0, b);
        EXPECT_TRUE(all_close(y.select(0, b).narrow(0, t0, t1 - t0), want))
            << what << " stream " << b << " from " << t0;
      }
    }
    State st = warm.clone();
    for (int64_t t = 0; t < len; ++t) {
      Tensor o = m->step_with_resets(x.select(1, t), st, resets.select(1, t));
      EXPECT_TRUE(all_close(o, y.select(1, t))) << what << " step " << t;
    }
  }
}
