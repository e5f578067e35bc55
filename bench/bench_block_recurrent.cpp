// The Block-Recurrent Transformer's speed claim (Hutchins et al. 2022: Rec:fixed:skip trains at
// about half the step time of Transformer-XL with a long window), measured on this machine
// beside the cost model, for XL, Slide, Rec:fixed:skip and Rec:lstm:dual as configured in
// configs/block_recurrent/{xl,slide,rec_fixed_skip,rec_lstm_dual}.json (their "model" objects;
// byte-level language modelling, batch 4 x 512 tokens, as those runs train). Per model, in one
// run:
//   training   ms per full step (forward over [4, 512] random byte ids with the state carried
//              from the previous step and detached as the trainer does, cross-entropy, backward,
//              gradient clipping, AdamW) after warm-up: the median, the interquartile range and
//              the min-max of `--steps` steps (default 30), tokens/s, and the median's ratio to
//              XL's. The models' steps are interleaved round-robin (A B C D A B C D ...) so that
//              the noise of a shared machine falls on all of them alike rather than on whichever
//              ran when it was busy;
//   FLOPs      forward FLOPs per token from the cost model (info(512)) and their ratio to XL's:
//              the paper's ratio is a wall-clock one on TPU, and the note (shared/papers/
//              block-recurrent.md §3.1) asks for both, since the FLOP ratio is what a kernel
//              without memory-bound overheads would approach; and the training FLOP utilisation,
//              3 x forward FLOPs per token x tokens/s over the sgemm rate measured here at the
//              models' own training shapes (the best of a measurement before and after);
//   step form  microseconds per token of step(ids [1], state) for one stream on --step-threads
//              threads (default 1: one token's products are too small to share), the median
//              over 512 steps after 64 warm-up ones, also interleaved round-robin; and the
//              state's bytes (State::bytes()), checked after every step: they must stay what
//              init_state gave (2W keys and values per layer, S x D per recurrent layer),
//              and the table says so when they do not.
// Prints the machine (CPU, threads, the measured sgemm rates), then one markdown table with a
// row per model. On a shared machine run it with OMP_WAIT_POLICY=passive: spinning OpenMP
// workers that lose their core to another process slow the many short parallel regions of a
// step at random. From the repository root:
//   OMP_WAIT_POLICY=passive build/bench_block_recurrent [--quick] [--steps N]
//       [--config-dir DIR] [--filter SUBSTRING] [--step-threads N]
// --quick: 2 training steps each after 1 warm-up, 32 step-form steps after 8 (a smoke test,
// not a measurement). --filter keeps the models whose name or file name contains SUBSTRING;
// the ratios need XL among them.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "bench/support/machine.h"
#include "bench/support/model_configs.h"
#include "rill/backend/cpu/denormals.h"
#include "rill/backend/cpu/isa.h"
#include "rill/models/sequence_model.h"
#include "rill/ops/softmax.h"
#include "rill/optim/adamw.h"
#include "rill/optim/clip.h"

using namespace rill;
using namespace rill::bench;
using nlohmann::json;

namespace {

constexpr int64_t kBatch = 4, kSeq = 512;  // the runs' batch and segment
const ModelIO kBytes{256, 0, 256};         // byte-level language modelling

struct Entry {
  std::string name, file;  // the paper's name; the config file in --config-dir
};
const std::vector<Entry> kEntries = {{"XL", "xl.json"},
                                     {"Slide", "slide.json"},
                                     {"Rec:fixed:skip", "rec_fixed_skip.json"},
                                     {"Rec:lstm:dual", "rec_lstm_dual.json"}};

struct Quartiles {
  double min = 0, q1 = 0, median = 0, q3 = 0, max = 0;
};

Quartiles quartiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto q = [&](double f) {  // linear interpolation between order statistics
    const double x = f * double(v.size() - 1);
    const size_t i = size_t(x);
    return i + 1 < v.size() ? v[i] + (x - double(i)) * (v[i + 1] - v[i]) : v[i];
  };
  return {v.front(), q(0.25), q(0.5), q(0.75), v.back()};
}

// One model under training: its optimiser and the state carried from step to step.
struct Trainee {
  std::string name;
  std::shared_ptr<SequenceModel> model;
  std::unique_ptr<optim::AdamW> opt;
  State state;
  std::vector<double> step_s;
  uint64_t seed = 0;

  void step(bool timed) {
    // Fresh random bytes each step (drawn outside the timing), so the carried state sees a
    // stream rather than one segment over and over.
    const Tensor ids = Tensor::randint({kBatch, kSeq}, 0, kBytes.vocab, ++seed);
    const Tensor targets = Tensor::randint({kBatch, kSeq}, 0, kBytes.vocab, ++seed);
    const auto t0 = Clock::now();
    state.detach();  // truncated BPTT, as the trainer does between segments
    opt->zero_grad();
    Tensor logits = model->forward(ids, &state);
    Tensor loss = cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
    loss.backward();
    optim::clip_grad_norm(model->parameters(), 1.0);
    opt->step();
    if (timed) step_s.push_back(seconds_since(t0));
  }
};

std::string ratio_text(double x, double xl) {
  return xl > 0 ? fmt::format("{:.2f}", x / xl) : std::string("-");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int steps = 0, warmup = 2, step_threads = 1;  // steps 0: 30, or 2 with --quick
  int64_t step_warmup = 64, step_count = 512;
  std::string dir = "configs/block_recurrent", filter;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick"))
      quick = true, warmup = 1, step_warmup = 8, step_count = 32;
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::max(1, std::atoi(argv[++i]));
    if (!std::strcmp(argv[i], "--config-dir") && i + 1 < argc) dir = argv[++i];
    if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    if (!std::strcmp(argv[i], "--step-threads") && i + 1 < argc)
      step_threads = std::max(1, std::atoi(argv[++i]));
  }
  if (steps == 0) steps = quick ? 2 : 30;
  const int threads = omp_get_max_threads();
  const cpu::FlushDenormalsGuard flush;  // as the trainer and the rill command run

  std::vector<Trainee> models;
  for (const Entry& e : kEntries) {
    if (!filter.empty() && e.name.find(filter) == std::string::npos &&
        e.file.find(filter) == std::string::npos)
      continue;
    Trainee t;
    t.name = e.name;
    t.model = make_model(read_model_config(dir + "/" + e.file), kBytes, 1);
    t.state = t.model->init_state(kBatch);
    t.opt = std::make_unique<optim::AdamW>(optim::param_groups(*t.model, 0.1), 1e-3);
    t.seed = 1000 * (models.size() + 1);
    models.push_back(std::move(t));
  }
  if (models.empty()) {
    std::fprintf(stderr, "bench_block_recurrent: no model matches --filter %s\n", filter.c_str());
    return 1;
  }
  const json first = models.front().model->config_json();
  const int64_t d = first.value("d_model", int64_t(256)), f = first.value("mlp_hidden", 1024);

  std::printf("# bench_block_recurrent: %s\n\n", dir.c_str());
  std::printf("- CPU: %s; AVX-512: %s; kernels at %s\n", cpu_model().c_str(),
              avx512_flags().c_str(), cpu::simd_level_name(cpu::simd_level()));
  std::printf("- threads %d (training); the step form on %d\n", threads, step_threads);
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::printf("- load average at start: %s; OMP_WAIT_POLICY=%s\n", loadavg().c_str(),
              wait ? wait : "(unset: active)");
  // The best of two measurements, before and after the training steps (a shared machine only
  // ever measures below its limits), so the utilisations below are conservative.
  double peak_train = 0, peak_square = 0;
  auto measure_limits = [&](const char* when) {
    // The sliding-window layers' shapes; the recurrent layer's per-block products (S = 64 rows)
    // are smaller, so this rate is, if anything, above what they can reach.
    const double t = training_gemm_peak(kBatch * kSeq, d, f, kBytes.out_dim, threads);
    const double q = sgemm_gflops(2048, 2048, 2048, false, threads, 3);
    peak_train = std::max(peak_train, t), peak_square = std::max(peak_square, q);
    std::printf(
        "- sgemm (oneDNN), %d threads, %s: %.0f GFLOP/s at 2048^3, %.0f over the models' "
        "training shapes\n",
        threads, when, q, t);
    std::fflush(stdout);
  };
  measure_limits("at the start");

  // Training, round-robin: warm-up steps first (allocations, oneDNN primitives, the state's
  // first fill), then the timed ones.
  for (Trainee& t : models) t.model->train();
  for (int s = 0; s < warmup + steps; ++s)
    for (Trainee& t : models) t.step(s >= warmup);
  measure_limits("after training");

  // The step form: one stream each, round-robin, every step timed.
  omp_set_num_threads(step_threads);
  struct StepResult {
    Quartiles us;
    size_t bytes0 = 0, bytes_min = 0, bytes_max = 0, info_bytes = 0;
  };
  std::vector<StepResult> stepped(models.size());
  {
    std::vector<State> states;
    std::vector<std::vector<double>> us(models.size());
    for (size_t i = 0; i < models.size(); ++i) {
      models[i].model->eval();
      states.push_back(models[i].model->init_state(1));
      stepped[i].bytes0 = stepped[i].bytes_min = stepped[i].bytes_max = states[i].bytes();
      stepped[i].info_bytes = models[i].model->info(kSeq).state_bytes;
    }
    const std::vector<int64_t> pool =
        Tensor::randint({step_warmup + step_count}, 0, kBytes.vocab, 7).to_vector<int64_t>();
    for (int64_t s = 0; s < step_warmup + step_count; ++s) {
      const Tensor id = Tensor::from_vector(std::vector<int64_t>{pool[size_t(s)]}, {1});
      for (size_t i = 0; i < models.size(); ++i) {
        const auto t0 = Clock::now();
        models[i].model->step(id, states[i]);
        const double sec = seconds_since(t0);
        if (s >= step_warmup) us[i].push_back(sec * 1e6);
        const size_t b = states[i].bytes();
        stepped[i].bytes_min = std::min(stepped[i].bytes_min, b);
        stepped[i].bytes_max = std::max(stepped[i].bytes_max, b);
      }
    }
    for (size_t i = 0; i < models.size(); ++i) stepped[i].us = quartiles(us[i]);
  }
  omp_set_num_threads(threads);

  std::printf(
      "\n## Batch %lld x %lld tokens: training, median of %d steps after %d warm-up "
      "(round-robin); step form, one stream, median of %lld steps after %lld\n\n",
      (long long)kBatch, (long long)kSeq, steps, warmup, (long long)step_count,
      (long long)step_warmup);
  const Trainee* xl = nullptr;
  for (const Trainee& t : models)
    if (t.name == "XL") xl = &t;
  const double xl_ms = xl ? quartiles(xl->step_s).median * 1e3 : 0;
  const double xl_flops = xl ? xl->model->info(kSeq).flops_per_token : 0;
  std::printf(
      "| model | parameters | ms/step: median | IQR | min-max | tokens/s | time vs XL | "
      "fwd MFLOP/token | FLOPs vs XL | training MFU | step µs/token: median [IQR] | state |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  bool all_constant = true;
  for (size_t i = 0; i < models.size(); ++i) {
    const Trainee& t = models[i];
    const ModelInfo info = t.model->info(kSeq);
    const Quartiles ms = quartiles(t.step_s);
    const double med = ms.median * 1e3, tps = double(kBatch * kSeq) / ms.median;
    const StepResult& st = stepped[i];
    const bool constant = st.bytes_min == st.bytes0 && st.bytes_max == st.bytes0;
    all_constant = all_constant && constant;
    std::string state = bytes_text(st.bytes0);
    if (!constant)
      state += fmt::format(" (NOT constant: {} to {})", bytes_text(st.bytes_min),
                           bytes_text(st.bytes_max));
    if (st.info_bytes != st.bytes0) state += fmt::format(" (info: {})", bytes_text(st.info_bytes));
    std::printf(
        "| %s | %.2f M | %.1f | %.1f-%.1f | %.1f-%.1f | %.0f | %s | %.2f | %s | %.0f%% | "
        "%.0f [%.0f-%.0f] | %s |\n",
        t.name.c_str(), info.parameters / 1e6, med, ms.q1 * 1e3, ms.q3 * 1e3, ms.min * 1e3,
        ms.max * 1e3, tps, ratio_text(med, xl_ms).c_str(), info.flops_per_token / 1e6,
        ratio_text(info.flops_per_token, xl_flops).c_str(),
        100 * 3 * info.flops_per_token * tps * 1e-9 / peak_train, st.us.median, st.us.q1, st.us.q3,
        state.c_str());
  }
  std::printf(
      "\ntime vs XL: the ratio of median step times (wall clock); FLOPs vs XL: of the cost "
      "model's forward FLOPs per token at context %lld. Training MFU: 3 x forward FLOPs per "
      "token x tokens/s over %.0f GFLOP/s, the best training-shape sgemm rate measured. "
      "State: State::bytes() of one stream at init_state; %s of the %lld step-form "
      "steps.%s\n",
      (long long)kSeq, peak_train,
      all_constant ? "every model's stayed the same after each"
                   : "NOT every model's stayed the same after each (see the rows)",
      (long long)(step_warmup + step_count), xl ? "" : " (XL filtered out: no ratios)");
  std::printf("Load average at the end: %s\n", loadavg().c_str());
  return 0;
}
