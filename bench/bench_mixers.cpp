// Mixer-level benchmarks for issue 4, printed as markdown tables:
//  1. training: forward + backward time and peak memory of one mixer layer (d_model 256,
//     4 heads, B = 1) for T = 256 .. 16384: softmax (fused kernel) and linear attention
//     (recurrent kernel, chunked kernel); the crossover and the ratio at 16k;
//  2. generation: time per token and state memory at contexts 1k .. 64k for softmax without a
//     cache (recomputing the prefix), with a KV cache, with a sliding window, and linear step.
// Times are medians of repeated runs. Usage: bench_mixers [--quick] [--max-nocache N]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rill/autograd/grad_mode.h"
#include "rill/core/allocator.h"
#include "rill/mixers/registry.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"

using namespace rill;
using nlohmann::json;

namespace {

constexpr int64_t kD = 256;

double median_ms(int reps, const std::function<void()>& fn) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct TrainPoint {
  double ms;
  double peak_mb;
};

TrainPoint train_point(const json& cfg, int64_t T, int reps) {
  auto m = make_mixer(cfg, kD, 1, DType::f32);
  Tensor x = Tensor::randn({1, T, kD}, 2).set_requires_grad(true);
  Tensor w = Tensor::randn({1, T, kD}, 3);
  auto once = [&] {
    x.zero_grad();
    for (auto& p : m->parameters()) p.zero_grad();
    sum(mul(m->forward(x, nullptr), w)).backward();
  };
  once();  // warm the allocator's cache
  Allocator& a = Allocator::instance();
  const size_t base = a.live_bytes();
  a.reset_peak();
  once();
  const double peak = double(a.peak_bytes() - base) / (1 << 20);
  return {median_ms(reps, once), peak};
}

// One step at a given context: the state is built directly (random keys/values or S).
double step_point(const json& cfg, int64_t context, int reps, size_t* state_bytes) {
  auto m = make_mixer(cfg, kD, 1, DType::f32);
  State s = m->init_state(1);
  const std::string type = cfg["type"];
  const std::string mode = cfg.value("step_mode", "kv_cache");
  if (type == "linear_attention") {
    Tensor S = s.get("S");
    s.set("S", Tensor::uniform(S.shape(), 0, 1, 4));
  } else if (mode == "no_cache") {
    s.set("x", Tensor::randn({1, context, kD}, 5));
  } else {
    const int64_t keep = cfg.value("window", 0) > 0 ? std::min<int64_t>(context, cfg["window"]) : context;
    s.set("k", Tensor::randn({1, 4, keep, kD / 4}, 6));
    s.set("v", Tensor::randn({1, 4, keep, kD / 4}, 7));
    s.set("pos", Tensor::scalar(double(context), DType::i64));
  }
  Tensor x = Tensor::randn({1, kD}, 8);
  const State start = s;
  NoGradGuard g;
  double ms = median_ms(reps, [&] {
    State t = start;  // softmax replaces its tensors; linear updates S in place (size fixed)
    m->step(x, t);
  });
  *state_bytes = start.bytes();
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int64_t max_nocache = 16384;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--max-nocache") && i + 1 < argc) max_nocache = std::atoll(argv[++i]);
  }
  std::printf("# rill mixer benchmarks: d_model %lld, 4 heads of 64, B = 1, f32, %d threads\n\n",
              (long long)kD, omp_get_max_threads());

  const json softmax = {{"type", "softmax_attention"}, {"heads", 4}, {"positions", "rotary"}};
  const json lin_rec = {{"type", "linear_attention"}, {"heads", 4}, {"form", "recurrent"}};
  const json lin_chunk = {{"type", "linear_attention"}, {"heads", 4}, {"form", "chunked"}, {"chunk", 64}};

  std::printf("## Training: one layer, forward + backward (median ms) and peak memory (MiB)\n\n");
  std::printf("| T | softmax fused ms | MiB | linear recurrent ms | MiB | linear chunked ms | MiB | softmax / chunked |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::vector<int64_t> lengths = {256, 512, 1024, 2048, 4096, 8192, 16384};
  if (quick) lengths = {256, 1024, 4096};
  int64_t crossover = -1;
  for (int64_t T : lengths) {
    const int reps = T <= 2048 ? 5 : 3;
    TrainPoint s = train_point(softmax, T, reps);
    TrainPoint r = train_point(lin_rec, T, reps);
    TrainPoint c = train_point(lin_chunk, T, reps);
    if (crossover < 0 && std::min(r.ms, c.ms) < s.ms) crossover = T;
    std::printf("| %lld | %.2f | %.1f | %.2f | %.1f | %.2f | %.1f | %.2fx |\n", (long long)T, s.ms,
                s.peak_mb, r.ms, r.peak_mb, c.ms, c.peak_mb, s.ms / c.ms);
    std::fflush(stdout);
  }
  std::printf("\nFirst measured length where linear attention trains faster than softmax: %lld\n\n",
              (long long)crossover);

  std::printf("## Generation: one layer, one token at a given context (median ms) and state size\n\n");
  std::printf("| context | softmax no cache ms | softmax KV cache ms | KV MiB | sliding window 1024 ms | window MiB | linear step ms | linear KiB |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  const json nocache = {{"type", "softmax_attention"}, {"heads", 4}, {"step_mode", "no_cache"}};
  const json window = {{"type", "softmax_attention"}, {"heads", 4}, {"window", 1024}};
  std::vector<int64_t> contexts = {1024, 4096, 16384, 65536};
  if (quick) contexts = {1024, 4096};
  for (int64_t L : contexts) {
    size_t b_nc = 0, b_kv = 0, b_w = 0, b_l = 0;
    std::string nc = "n/a";
    if (L <= max_nocache) nc = fmt::format("{:.1f}", step_point(nocache, L, L <= 4096 ? 3 : 1, &b_nc));
    double kv = step_point(softmax, L, 21, &b_kv);
    double w = step_point(window, L, 21, &b_w);
    double l = step_point(lin_rec, L, 101, &b_l);
    std::printf("| %lld | %s | %.3f | %.1f | %.3f | %.2f | %.4f | %.1f |\n", (long long)L, nc.c_str(), kv,
                b_kv / 1048576.0, w, b_w / 1048576.0, l, b_l / 1024.0);
    std::fflush(stdout);
  }
  return 0;
}
