// Per-step inference time and state memory of one stream (B = 1, the RL setting: one agent,
// one observation at a time), side by side for any model configs in one run. For each config:
//   time    the seconds of one step through the model's step() and through its tight stepper
//           (make_stepper) where it has one, at contexts 64, 128 and 1000: a stream is stepped
//           from a fresh state to the largest context, every step timed, the pass repeated and
//           each step's median kept; a context's figure is the median and the 10th-90th
//           percentile spread of the steps just before it (attention with a cache slows as it
//           grows, a recurrent state does not);
//   memory  info(context).state_bytes, what the model says, beside the bytes of the State it
//           actually holds after that many steps.
// Inputs are T-Maze observations by default (16 features in, 2 classes out), or token ids with
// --vocab. Works for any registered model or mixer: it only uses the SequenceModel interface.
// On a shared machine run it with OMP_WAIT_POLICY=passive. Usage:
//   bench_step_memory [--features 16] [--classes 2] [--vocab V] [--contexts 64,128,1000]
//                     [--passes 3] [--threads 1] CONFIG.json...
// A CONFIG is a run config (its "model" is used) or a bare model config.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/support/machine.h"
#include "bench/support/model_configs.h"
#include "rill/backend/cpu/denormals.h"
#include "rill/backend/cpu/isa.h"
#include "rill/core/error.h"
#include "rill/data/tmaze.h"
#include "rill/models/sequence_model.h"

using namespace rill;
using namespace rill::bench;
using nlohmann::json;

namespace {

struct Spread {
  double median = 0, p10 = 0, p90 = 0;  // seconds
};

Spread spread_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto q = [&](double f) { return v[size_t(f * double(v.size() - 1) + 0.5)]; };
  return {q(0.5), q(0.1), q(0.9)};
}

std::string us(const Spread& s) {
  return fmt::format("{:.1f} [{:.1f}, {:.1f}]", s.median * 1e6, s.p10 * 1e6, s.p90 * 1e6);
}

// What one pass over the stream measures.
struct Pass {
  std::vector<double> step_s;       // per step
  std::vector<size_t> state_bytes;  // the State's bytes after each context
};

// Steps one fresh stream `steps` times; step(t, state) runs step t.
template <class StepFn>
Pass run_pass(SequenceModel& model, int64_t steps, const std::vector<int64_t>& contexts,
              StepFn&& step) {
  Pass p;
  p.step_s.resize(size_t(steps));
  State state = model.init_state(1);
  for (int64_t t = 0; t < steps; ++t) {
    const auto t0 = Clock::now();
    step(t, state);
    p.step_s[size_t(t)] = seconds_since(t0);
    for (int64_t c : contexts)
      if (t + 1 == c) p.state_bytes.push_back(state.bytes());
  }
  return p;
}

// The median over passes of each step's time, then the spread of the steps before a context.
std::vector<Spread> per_context(const std::vector<Pass>& passes,
                                const std::vector<int64_t>& contexts) {
  std::vector<Spread> out;
  for (int64_t c : contexts) {
    const int64_t window = std::max<int64_t>(8, std::min<int64_t>(64, c / 2));
    std::vector<double> v;
    for (int64_t t = c - window; t < c; ++t) {
      std::vector<double> at;
      for (const Pass& p : passes) at.push_back(p.step_s[size_t(t)]);
      v.push_back(median(at));
    }
    out.push_back(spread_of(v));
  }
  return out;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      v.push_back(std::stoll(item));
    } catch (const std::exception&) {
      fail("[bench] \"{}\" in --contexts is not an integer", item);
    }
    RILL_CHECK(v.back() > 0, "[bench] contexts must be positive, got {}", v.back());
  }
  RILL_CHECK(!v.empty(), "[bench] --contexts is empty");
  std::sort(v.begin(), v.end());
  return v;
}

int run(int argc, char** argv) {
  ModelIO io{0, data::kTMazeFeatures, data::kTMazeClasses};
  std::vector<int64_t> contexts = {64, 128, 1000};
  int passes = 3, threads = 1;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      RILL_CHECK(i + 1 < argc, "[bench] {} needs a value", a);
      return argv[++i];
    };
    if (a == "--features")
      io.in_features = std::stoll(value()), io.vocab = 0;
    else if (a == "--classes")
      io.out_dim = std::stoll(value());
    else if (a == "--vocab")
      io.vocab = std::stoll(value()), io.in_features = 0, io.out_dim = io.vocab;
    else if (a == "--contexts")
      contexts = parse_list(value());
    else if (a == "--passes")
      passes = std::stoi(value());
    else if (a == "--threads")
      threads = std::stoi(value());
    else if (a.rfind("--", 0) == 0)
      fail("[bench] unknown option {}", a);
    else
      paths.push_back(a);
  }
  RILL_CHECK(!paths.empty(), "[bench] give at least one model config (e.g. configs/tmaze/*.json)");
  RILL_CHECK(passes > 0 && threads > 0, "[bench] --passes and --threads must be positive");
  RILL_CHECK((io.vocab > 0) != (io.in_features > 0) && io.out_dim > 0,
             "[bench] give --features F with --classes C, or --vocab V");
  omp_set_num_threads(threads);
  const cpu::FlushDenormalsGuard flush;  // as the trainer and the rill command run
  const int64_t steps = contexts.back();

  std::printf("# bench_step_memory: one stream (B = 1), %s\n\n",
              io.vocab > 0 ? fmt::format("token ids of a vocabulary of {}", io.vocab).c_str()
                           : fmt::format("{} features in, {} outputs (T-Maze observations)",
                                         io.in_features, io.out_dim)
                                 .c_str());
  std::printf("- CPU: %s; AVX-512: %s; kernels at %s\n", cpu_model().c_str(),
              avx512_flags().c_str(), cpu::simd_level_name(cpu::simd_level()));
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::printf("- %d thread(s); load average at start: %s; OMP_WAIT_POLICY=%s\n", threads,
              loadavg().c_str(), wait ? wait : "(unset: active)");
  std::printf(
      "- each pass steps a fresh stream to %lld; %d passes, each step's median kept; a context's "
      "time is the median [10th, 90th percentile] of the steps just before it, in microseconds\n\n",
      (long long)steps, passes);

  // The inputs of every step: one T-Maze episode, or a fixed token sequence.
  Tensor episode;
  if (io.in_features == data::kTMazeFeatures) {
    const int64_t len =
        std::clamp<int64_t>(steps, data::kTMazeMinCorridor, data::kTMazeMaxCorridor);
    episode = data::tmaze_episodes(len, data::tmaze_stream_key(1, "test"), 0, 1).x.select(0, 0);
  } else if (io.in_features > 0) {
    episode = Tensor::uniform({steps, io.in_features}, 0, 1, 1);
  }
  auto features_at = [&](int64_t t) {
    return episode.select(0, t % episode.size(0)).unsqueeze(0).contiguous();  // [1, F]
  };
  auto ids_at = [&](int64_t t) {
    return Tensor::from_vector(std::vector<int64_t>{(t * 31 + 7) % std::max<int64_t>(io.vocab, 1)},
                               {1});
  };

  std::printf(
      "| config | parameters | context | state (info) | state (actual) | step() us | tight "
      "stepper us |\n|---|---|---|---|---|---|---|\n");
  for (const std::string& path : paths) {
    const json model_json = read_model_config(path);
    auto model = make_model(model_json, io, 1);
    model->eval();
    std::vector<Pass> step_passes, stepper_passes;
    for (int r = 0; r < passes; ++r)
      step_passes.push_back(run_pass(*model, steps, contexts, [&](int64_t t, State& s) {
        model->step(io.vocab > 0 ? ids_at(t) : features_at(t), s);
      }));
    // The tight path, where the model has one (a stack has it for f32 token input).
    auto stepper = model->make_stepper(1, WeightFormat::f32);
    const bool tight = dynamic_cast<TensorModelStepper*>(stepper.get()) == nullptr;
    if (tight) {
      for (int r = 0; r < passes; ++r)
        stepper_passes.push_back(run_pass(
            *model, steps, contexts, [&](int64_t t, State& s) { stepper->step(ids_at(t), s); }));
    }
    const std::vector<Spread> st = per_context(step_passes, contexts);
    const std::vector<Spread> tt =
        tight ? per_context(stepper_passes, contexts) : std::vector<Spread>{};
    for (size_t k = 0; k < contexts.size(); ++k) {
      const ModelInfo info = model->info(contexts[k]);
      std::printf("| %s | %.3f M | %lld | %s%s | %s | %s | %s |\n", path.c_str(),
                  double(info.parameters) / 1e6, (long long)contexts[k],
                  bytes_text(info.state_bytes).c_str(), info.constant_state ? "" : " (grows)",
                  bytes_text(step_passes.front().state_bytes[k]).c_str(), us(st[k]).c_str(),
                  tight ? us(tt[k]).c_str() : "- (none for this input)");
      std::fflush(stdout);
    }
  }
  std::printf("\nLoad average at the end: %s\n", loadavg().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
