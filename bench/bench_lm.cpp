// Whole-model speed against the machine's own limits, measured in one run: for the default
// language model (configs/default.json: d_model 256, 4 layers, MLP 1024, byte vocabulary) and
// the same model with each registered mixer in place of the default's,
//   training:   tokens/s of full steps (forward, backward, clipping, AdamW; batch 16 x 128) and
//               the model FLOP utilisation: 3 x forward FLOPs per token x tokens/s over the
//               sgemm peak measured here at the model's own training shapes;
//   generation: tokens/s of the tight step path for 1, 4, 16 and 64 streams stepping together,
//               in f32, bf16 and int8 weights, and the fraction of the weight-read bound: B
//               streams per read of the weights at the read bandwidth of a buffer of their size
//               (they live in the L3 cache);
// and, for 16 streams, the model FLOP utilisation of generation against the same peak.
// Prints the machine, the limits and markdown tables. On a shared machine run it with
// OMP_WAIT_POLICY=passive: spinning OpenMP workers that lose their core to another process slow
// the many short parallel regions of a step tenfold at random. Usage:
//   bench_lm [--quick] [--steps N] [--tokens N] [--config FILE] [--filter SUBSTRING]
#include <omp.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "bench/support/machine.h"
#include "rill/backend/cpu/denormals.h"
#include "rill/backend/cpu/isa.h"
#include "rill/mixers/registry.h"
#include "rill/models/stack_model.h"
#include "rill/ops/softmax.h"
#include "rill/optim/adamw.h"
#include "rill/optim/clip.h"
#include "rill/train/train_config.h"

using namespace rill;
using namespace rill::bench;
using nlohmann::json;

namespace {

constexpr int64_t kBatch = 16, kSeq = 128;

struct Row {
  std::string name;
  json model;
};

double train_tokens_per_s(SequenceModel& model, int steps) {
  optim::AdamW opt(optim::param_groups(model, 0.1), 1e-3);
  Tensor ids = Tensor::randint({kBatch, kSeq}, 0, model.io().vocab, 1);
  Tensor targets = Tensor::randint({kBatch, kSeq}, 0, model.io().vocab, 2);
  State state = model.init_state(kBatch);
  model.train();
  const double s = time_median(steps, 2, [&] {
    state.detach();
    opt.zero_grad();
    Tensor logits = model.forward(ids, &state);
    Tensor loss = cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}));
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    opt.step();
  });
  return double(kBatch * kSeq) / s;
}

double generate_tokens_per_s(SequenceModel& model, int64_t streams, WeightFormat format,
                             int64_t tokens) {
  model.eval();
  auto stepper = model.make_stepper(streams, format);
  State state = model.init_state(streams);
  std::vector<int64_t> ids(streams);
  for (int64_t b = 0; b < streams; ++b) ids[b] = (b * 31) % model.io().vocab;
  Tensor t = Tensor::from_vector(ids, {streams});
  for (int i = 0; i < 8; ++i) stepper->step(t, state);
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < tokens; ++i) stepper->step(t, state);
  return double(tokens * streams) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int steps = 6;
  int64_t tokens = 400;
  std::string config_path = "configs/default.json", filter;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true, steps = 3, tokens = 100;
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = std::atoll(argv[++i]);
    if (!std::strcmp(argv[i], "--config") && i + 1 < argc) config_path = argv[++i];
    if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
  }
  const int threads = omp_get_max_threads();
  const cpu::FlushDenormalsGuard flush;  // as the trainer and the rill command run
  const TrainConfig run = TrainConfig::from_file(config_path);
  std::vector<Row> rows = {{"default (" + config_path + ")", run.model}};
  for (const MixerSpec* spec : registered_mixers()) {  // each mixer's first example in its place
    json m = run.model;
    m["mixers"] = json::array({spec->examples.front()});
    rows.push_back({spec->type + " " + spec->examples.front().dump(), m});
  }
  if (!filter.empty())
    std::erase_if(rows, [&](const Row& r) { return r.name.find(filter) == std::string::npos; });

  std::printf("# bench_lm: %s\n\n", config_path.c_str());
  std::printf("- CPU: %s; AVX-512: %s; kernels at %s\n", cpu_model().c_str(),
              avx512_flags().c_str(), cpu::simd_level_name(cpu::simd_level()));
  std::printf("- threads %d (training); generation on 1 thread for 1 stream, %d for more\n",
              threads, threads);
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::printf("- load average at start: %s; OMP_WAIT_POLICY=%s\n", loadavg().c_str(),
              wait ? wait : "(unset: active)");
  auto base = make_model(run.model, {256, 0, 256}, 1);
  const StackConfig base_cfg = static_cast<StackModel&>(*base).config;
  // The limits are the best of three measurements spread over the run (a shared machine only
  // ever measures below its limits), so the fractions below are conservative.
  double peak_train = 0, peak_square = 0;
  auto measure_limits = [&](const char* when) {
    const double t = training_gemm_peak(kBatch * kSeq, base_cfg.d_model, base_cfg.mlp_hidden,
                                        base_cfg.io.out_dim, threads);
    const double q = sgemm_gflops(2048, 2048, 2048, false, threads, 3);
    peak_train = std::max(peak_train, t), peak_square = std::max(peak_square, q);
    std::printf(
        "- sgemm (oneDNN), %d threads, %s: %.0f GFLOP/s at 2048^3, %.0f over the model's "
        "training shapes\n",
        threads, when, q, t);
  };
  measure_limits("at the start");

  std::printf("\n## Training: batch %lld x %lld tokens, %d threads\n\n", (long long)kBatch,
              (long long)kSeq, threads);
  struct TrainRow {
    std::string name;
    double params, tps, gflops;
  };
  std::vector<TrainRow> trained;
  for (const Row& r : rows) {
    auto m = make_model(r.model, {256, 0, 256}, 1);
    const double tps = train_tokens_per_s(*m, steps);
    trained.push_back({r.name, m->info(kSeq).parameters / 1e6, tps,
                       3 * m->info(kSeq).flops_per_token * tps * 1e-9});
  }
  measure_limits("after training");
  std::printf("\n| model | parameters | tokens/s | model GFLOP/s | MFU |\n|---|---|---|---|---|\n");
  for (const TrainRow& t : trained)
    std::printf("| %s | %.2f M | %.0f | %.1f | %.0f%% |\n", t.name.c_str(), t.params, t.tps,
                t.gflops, 100 * t.gflops / peak_train);

  std::printf(
      "\nMFU: 3 x forward FLOPs per token x tokens/s over %.0f GFLOP/s, the best "
      "training-shape sgemm rate measured.\n",
      peak_train);
  std::printf(
      "\n## Generation: the tight step path, tokens/s (fraction of the weight-read bound)"
      "\n\n");
  const std::vector<int64_t> streams =
      quick ? std::vector<int64_t>{1, 16} : std::vector<int64_t>{1, 4, 16, 64};
  std::printf("| model | weights | MB |");
  for (int64_t b : streams) std::printf(" %lld stream%s |", (long long)b, b > 1 ? "s" : "");
  std::printf(" MFU at 16 |\n|---|---|---|");
  for (size_t i = 0; i < streams.size(); ++i) std::printf("---|");
  std::printf("---|\n");
  for (const Row& r : rows) {
    auto m = make_model(r.model, {256, 0, 256}, 1);
    for (WeightFormat fmt : {WeightFormat::f32, WeightFormat::bf16, WeightFormat::int8}) {
      const double bytes = double(m->make_stepper(1, fmt)->weight_bytes());
      std::printf("| %s | %s | %.1f |", r.name.c_str(), weight_format_name(fmt), bytes / 1e6);
      double mfu16 = 0;
      for (int64_t b : streams) {
        const int th = b == 1 ? 1 : threads;
        omp_set_num_threads(th);
        const double bw = std::max(read_bandwidth(bytes, th), read_bandwidth(bytes, th));
        const double tps = generate_tokens_per_s(*m, b, fmt, b == 1 ? tokens : tokens / 4);
        const double bound = double(b) * bw * 1e9 / bytes;  // B tokens per read of the weights
        std::printf(" %.0f (%.0f%%) |", tps, 100 * tps / bound);
        if (b == 16) mfu16 = m->info(1024).flops_per_token * tps * 1e-9 / peak_square;
        std::fflush(stdout);
      }
      omp_set_num_threads(threads);
      std::printf(" %.0f%% |\n", 100 * mfu16);
    }
  }
  measure_limits("at the end");
  std::printf(
      "\nMFU at 16 streams is over the 2048^3 rate (best: %.0f GFLOP/s). Load average at "
      "the end: %s\n",
      peak_square, loadavg().c_str());
  return 0;
}
