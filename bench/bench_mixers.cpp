// Mixer-level benchmarks over every registered mixer's example configurations (a new mixer is
// measured by registering), printed as markdown tables:
//  1. training: forward + backward time and peak memory of one mixer layer (d_model 256, B = 1)
//     for T = 256 .. 16384, and each configuration's time relative to full softmax attention;
//  2. generation: time per token of the step form and state bytes at contexts 1k .. 64k, the
//     state first filled by the parallel form over `context` tokens (in pieces of 4096).
// Times are medians of repeated runs. Usage:
//   bench_mixers [--quick] [--max-grow N] [--filter SUBSTRING]
//     --max-grow  the longest context for states that grow with it (default 65536; a recomputed
//                 prefix, step_mode no_cache, stops at 16384 whatever this says)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/support/machine.h"
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
  return 1e3 * bench::time_median(reps, 0, fn);
}

struct Config {
  std::string name;  // "type #i"
  json config;
};

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

// One step after `context` tokens; the state is filled by the parallel form first.
double step_point(const json& cfg, int64_t context, int reps, size_t* state_bytes) {
  auto m = make_mixer(cfg, kD, 1, DType::f32);
  NoGradGuard g;
  State s = m->init_state(1);
  for (int64_t done = 0; done < context; done += 4096) {
    const int64_t n = std::min<int64_t>(4096, context - done);
    m->forward(Tensor::randn({1, n, kD}, uint64_t(10 + done)), &s);
  }
  Tensor x = Tensor::randn({1, kD}, 8);
  const State start = s.clone();
  *state_bytes = start.bytes();
  return median_ms(reps, [&] {
    State t = start.clone();  // a step may update its state in place
    m->step(x, t);
  });
}

std::string bytes_text(size_t b) {
  if (b < (1u << 20)) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{:.1f} MiB", b / double(1 << 20));
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int64_t max_grow = 65536;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--max-grow") && i + 1 < argc) max_grow = std::atoll(argv[++i]);
    if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
  }
  std::vector<Config> configs;
  for (const MixerSpec* spec : registered_mixers())
    for (size_t i = 0; i < spec->examples.size(); ++i) {
      Config c{fmt::format("{} #{}", spec->type, i), spec->examples[i]};
      if (filter.empty() || c.config.dump().find(filter) != std::string::npos) configs.push_back(c);
    }
  std::printf("# rill mixer benchmarks: d_model %lld, B = 1, f32, %d threads\n\n", (long long)kD,
              omp_get_max_threads());
  std::printf("Configurations (every registered mixer's examples):\n\n");
  for (const Config& c : configs)
    std::printf("- %s: `%s`\n", c.name.c_str(), c.config.dump().c_str());

  std::printf("\n## Training: one layer, forward + backward, median ms (peak MiB)\n\n| T |");
  for (const Config& c : configs) std::printf(" %s |", c.name.c_str());
  std::printf("\n|---|");
  for (size_t i = 0; i < configs.size(); ++i) std::printf("---|");
  std::printf("\n");
  std::vector<int64_t> lengths = {256, 512, 1024, 2048, 4096, 8192, 16384};
  if (quick) lengths = {256, 1024, 4096};
  for (int64_t T : lengths) {
    const int reps = T <= 2048 ? 5 : 3;
    std::printf("| %lld |", (long long)T);
    for (const Config& c : configs) {
      TrainPoint p = train_point(c.config, T, reps);
      std::printf(" %.2f (%.1f) |", p.ms, p.peak_mb);
      std::fflush(stdout);
    }
    std::printf("\n");
  }

  std::printf(
      "\n## Generation: one token through one layer at a given context, median ms "
      "(state per stream)\n\n| context |");
  for (const Config& c : configs) std::printf(" %s |", c.name.c_str());
  std::printf("\n|---|");
  for (size_t i = 0; i < configs.size(); ++i) std::printf("---|");
  std::printf("\n");
  std::vector<int64_t> contexts = {1024, 4096, 16384, 65536};
  if (quick) contexts = {1024, 4096};
  for (int64_t L : contexts) {
    std::printf("| %lld |", (long long)L);
    for (const Config& c : configs) {
      auto probe = make_mixer(c.config, kD, 1, DType::f32);
      const bool recompute = c.config.value("step_mode", "") == "no_cache";
      if ((!probe->constant_state() && L > max_grow) || (recompute && L > 16384)) {
        std::printf(" - |");
        continue;
      }
      size_t bytes = 0;
      const double ms = step_point(c.config, L, recompute ? 3 : 51, &bytes);
      std::printf(" %.4f (%s) |", ms, bytes_text(bytes).c_str());
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  return 0;
}
