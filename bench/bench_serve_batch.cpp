// What batched stepping buys `rill serve`: B streams advanced one token each, in one batched
// step (serve::BatchedStreams, one GEMM per projection for all B) against the same B streams
// stepped one after another with a batch-1 stepper (what a server without batching does), side
// by side in one run, for B = 1, 8, 64, 256 (--batches). Sampling is included in both.
//
// The bound: a step reads the packed weights once (batched) or B times (one by one), and reads
// and writes every stream's state; the report gives the bytes a step moves, the bandwidth that
// implies, and the machine's measured read bandwidth for a buffer of that size (in the same
// run), so the fraction of the limit reached is on the line. Tokens/s is B / (step time).
// Usage: bench_serve_batch [--batches 1,8,64,256] [--steps 64] [--threads T] [CONFIG.json]
//   CONFIG: a run config or a model config (default configs/default.json), vocabulary 256.
// Run it with OMP_WAIT_POLICY=passive on a shared machine.
#include <omp.h>

#include <sstream>

#include "bench/support/machine.h"
#include "bench/support/model_configs.h"
#include "rill/backend/cpu/denormals.h"
#include "rill/serve/batched_streams.h"

using namespace rill;
using namespace rill::bench;

int main(int argc, char** argv) {
  const cpu::FlushDenormalsGuard flush;
  std::string config = "configs/default.json", batches = "1,8,64,256";
  int64_t steps = 64;
  int threads = omp_get_max_threads();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (a == "--batches")
      batches = next();
    else if (a == "--steps")
      steps = std::stoll(next());
    else if (a == "--threads")
      threads = std::stoi(next());
    else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    } else
      config = a;
  }
  omp_set_num_threads(threads);
  auto model = make_model(read_model_config(config), {256, 0, 256}, 1);
  model->eval();
  const size_t state = model->info(0).state_bytes;
  const size_t weights = model->make_stepper(1, WeightFormat::f32)->weight_bytes();
  fmt::print("{} | {} | {} threads | load {}\n", cpu_model(), avx512_flags(), threads, loadavg());
  fmt::print("model {}: {} parameters, packed weights {}, state {} per stream\n\n", config,
             model->info(0).parameters, bytes_text(weights), bytes_text(state));
  fmt::print("{:>5} {:>12} {:>12} {:>11} {:>11} {:>8} {:>12} {:>10} {:>9}\n", "B", "batched us",
             "one-by-one", "batched/s", "1-by-1/s", "ratio", "moved/step", "GB/s", "of limit");
  std::stringstream ss(batches);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const int64_t b = std::stoll(item);
    SamplerOptions opt;
    std::vector<Stream> batched(b), alone(b);
    for (int64_t i = 0; i < b; ++i) {
      batched[i] = start_stream(*model, {int64_t(i % 200), 32, 101}, uint64_t(i));
      alone[i] = batched[i];
      alone[i].state = batched[i].state.clone();
    }
    serve::BatchedStreams batch(*model, WeightFormat::f32, ContextPolicy{});
    for (auto& s : batched) batch.join(&s, opt);
    const double t_batched = time_median(int(steps), 4, [&] { batch.step(); });
    auto one = model->make_stepper(1, WeightFormat::f32);
    const double t_alone =
        time_median(int(std::max<int64_t>(4, steps / std::max<int64_t>(1, b / 8))), 2, [&] {
          for (auto& s : alone) {
            prepare_step(*model, s, ContextPolicy{});
            Tensor logits = one->step(Tensor::from_vector<int64_t>({s.pending}, {1}), s.state);
            s.pending = sample(logits, opt, s.generator)[0];
          }
        });
    // Bytes a batched step moves at the least: the weights once, each state read and written.
    const double moved = double(weights) + 2.0 * double(state) * double(b);
    const double gbs = moved / t_batched / 1e9;
    const double limit = read_bandwidth(moved, threads);
    fmt::print(
        "{:>5} {:>12.1f} {:>12.1f} {:>11.0f} {:>11.0f} {:>7.1f}x {:>12} {:>10.1f} {:>8.0f}%\n", b,
        t_batched * 1e6, t_alone * 1e6, double(b) / t_batched, double(b) / t_alone,
        t_alone / t_batched, bytes_text(size_t(moved)), gbs, 100 * gbs / limit);
  }
  return 0;
}
