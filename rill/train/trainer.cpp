// The training loop (trainer.h): set-up or exact resume, then steps, validation, logging and
// checkpoints, all through the Task and SequenceModel interfaces.
#include "rill/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "rill/autograd/grad_mode.h"
#include "rill/backend/cpu/denormals.h"
#include "rill/core/profiler.h"
#include "rill/dist/communicator.h"
#include "rill/dist/data_parallel.h"
#include "rill/dist/replicas.h"
#include "rill/io/atomic_file.h"
#include "rill/optim/adamw.h"
#include "rill/optim/clip.h"
#include "rill/optim/schedule.h"
#include "rill/train/checkpoint.h"
#include "rill/train/metrics.h"

namespace rill {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// With a time limit, the horizon is first fitted this many steps after the warm-up (speed is
// measured once the first steps' start-up costs are behind), then refitted every kRefitEvery
// steps. Both are counted from step 0 of the run, so a resumed run refits at the same steps.
constexpr int64_t kFitAfterWarmup = 10, kRefitEvery = 25;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void say(const TrainEvents& ev, const std::string& line) {
  if (ev.on_message) ev.on_message(line);
}

}  // namespace

RunParts build_run(const TrainConfig& config) {
  config.validate();
  TaskContext ctx{config.data_dir, config.batch, config.seed};
  RunParts p;
  p.task = make_task(config.task, ctx);
  p.model = make_model(config.model, p.task->model_io(), config.seed);
  return p;
}

TrainResult train(const TrainConfig& cfg, bool resume, const TrainEvents& ev,
                  dist::Communicator* group) {
  const cpu::FlushDenormalsGuard flush;  // denormals would slow every kernel, GEMM most
  dist::Communicator& comm = group ? *group : dist::local_communicator();
  const bool lead = comm.rank() == 0;  // rank 0 alone writes files and reports
  const bool several = comm.size() > 1;
  RunParts parts = build_run(cfg);
  Task& task = *parts.task;
  SequenceModel& model = *parts.model;
  const auto clock = ev.clock ? ev.clock : steady_seconds;
  auto tell = [&](const std::string& line) {
    if (lead) say(ev, line);
  };
  // Rank 0's value of something every rank must decide alike (its clock, its Ctrl-C).
  auto agreed = [&](double value) {
    if (several) comm.broadcast(&value, sizeof value, 0);
    return value;
  };

  if (lead) fs::create_directories(cfg.out_dir);
  const std::string ckpt = cfg.out_dir + "/checkpoint.safetensors";
  const std::string log_path = cfg.out_dir + "/metrics.jsonl";
  const json model_json = model.config_json(), task_json = task.describe();

  optim::AdamW opt(optim::param_groups(model, cfg.weight_decay), cfg.lr,
                   {cfg.beta1, cfg.beta2, 1e-8});
  const bool carries = task.carries_state();
  TrainingProgress progress;
  progress.horizon = cfg.steps;
  // Rank 0's checkpoint, readable on every rank (the other machines need not share its disk).
  std::unique_ptr<dist::SharedFile> resumed;
  CheckpointInfo info;
  if (resume) {
    RILL_CHECK(!lead || fs::exists(ckpt), "[train] --resume: no checkpoint at {}", ckpt);
    resumed = std::make_unique<dist::SharedFile>(comm, ckpt);
    info = read_checkpoint_info(resumed->path());
  }
  // The gradient shards: as configured, else the checkpoint's (a resumed run keeps its sums'
  // order on any number of ranks), else one per rank.
  int64_t shards = cfg.grad_shards;
  if (shards == 0 && resume && info.run.is_object())
    shards = info.run.value("grad_shards", int64_t(1));
  if (shards == 0) shards = comm.size();
  RILL_CHECK(shards % comm.size() == 0 || !(resume && cfg.grad_shards == 0),
             "[train] --resume on {} ranks: {} was trained with grad_shards {}, which {} ranks "
             "cannot split; resume on a number of ranks that divides {}, or set --grad-shards "
             "(a multiple of {}; the gradient is then summed in another order, so the run does "
             "not continue bitwise)",
             comm.size(), ckpt, shards, comm.size(), shards, comm.size());
  const dist::ReduceMode mode = dist::reduce_mode_from_name(cfg.allreduce);
  const dist::ShardLayout layout = dist::ShardLayout::make(
      cfg.batch, shards, comm.size(), comm.rank(), mode == dist::ReduceMode::exact);
  dist::DataParallel dp(comm, model, layout, mode, carries);
  json run_json = cfg.to_json();
  run_json["grad_shards"] = shards;  // as resolved: what the sums' order depends on

  if (resume) {
    RILL_CHECK(info.task == task_json,
               "[train] --resume: {} was trained on task {}, but this config gives {}", ckpt,
               info.task.dump(), task_json.dump());
    State full = carries ? model.init_state(cfg.batch) : State();  // the shapes it must have
    load_checkpoint(resumed->path(), model_json, model, &opt, carries ? &full : nullptr);
    if (carries) dp.set_full_state(full);
    resumed.reset();
    progress = info.progress;
    for (auto& [name, g] : model.generators()) {
      auto it = progress.rngs.find(name);
      RILL_CHECK(it != progress.rngs.end(), "[train] {} lacks the RNG state of {}", ckpt, name);
      *g = it->second;
    }
    // A changed step count or time limit plans the schedule anew; otherwise the saved (perhaps
    // fitted) horizon goes on, so an interrupted run continues on the same schedule.
    const bool same_plan = info.run.is_object() &&
                           info.run.value("steps", int64_t(-1)) == cfg.steps &&
                           info.run.value("time_limit_s", -1.0) == cfg.time_limit_s;
    if (!same_plan) {
      progress.horizon = cfg.steps;
      tell(
          fmt::format("resuming with steps {} and time limit {} s: the schedule is planned "
                      "again from step {}",
                      cfg.steps, cfg.time_limit_s, progress.step));
    }
    RILL_CHECK(progress.step < progress.horizon,
               "[train] --resume: the run in {} already finished at step {} (its schedule ends "
               "at step {}); to train further, raise --steps above {}",
               cfg.out_dir, progress.step, progress.horizon, progress.step);
    RILL_CHECK(cfg.time_limit_s <= 0 || progress.elapsed_s < cfg.time_limit_s,
               "[train] --resume: the run in {} already used its time limit ({:.0f} s trained of "
               "{:.0f} s); to train further, raise --time-limit",
               cfg.out_dir, progress.elapsed_s, cfg.time_limit_s);
    task.set_position(progress.data_position);
  } else {
    if (carries) dp.reset_state();
    dist::broadcast_weights(comm, model);  // rank 0's initial weights on every rank
    if (lead) fs::remove(log_path);        // a fresh run starts a fresh log
  }
  if (lead) {
    const std::string text = run_json.dump(2) + "\n";
    write_file_atomically(cfg.out_dir + "/config.json",
                          [&](int fd) { write_all(fd, text.data(), text.size(), cfg.out_dir); });
  }

  optim::Schedule schedule{optim::ScheduleKind::cosine, cfg.lr, cfg.warmup, progress.horizon,
                           cfg.min_lr};
  std::optional<MetricsLog> log;
  if (lead) log.emplace(log_path);
  const double t0 = clock(), elapsed0 = progress.elapsed_s;
  auto elapsed = [&]() { return elapsed0 + (clock() - t0); };
  const std::string metric_name = task.loss_metric(0).first;
  auto save = [&]() {
    progress.data_position = task.position();
    progress.elapsed_s = elapsed();
    progress.rngs.clear();
    for (auto& [name, g] : model.generators()) progress.rngs[name] = *g;
    const State state = carries ? dp.gather_full_state() : State();  // whole, on rank 0
    const bool agree = !several || dist::same_on_every_rank(comm, weights_sha256(model));
    if (lead) {
      RILL_CHECK(agree,
                 "[train] the ranks' weights differ at step {}: the ranks no longer train one "
                 "model (are the machines of different kinds, or was a rank's memory corrupted?)",
                 progress.step);
      save_checkpoint(ckpt, {model_json, task_json, run_json, &model, &opt,
                             carries ? &state : nullptr, progress});
    }
    comm.barrier();  // the others wait, without spinning, while rank 0 writes
  };
  auto plot = [&]() {
    if (!lead) return;
    const std::string first_mixer = cfg.model.contains("mixers") &&
                                            cfg.model["mixers"].is_array() &&
                                            !cfg.model["mixers"].empty()
                                        ? cfg.model["mixers"][0].value("type", "model")
                                        : cfg.model.value("type", "model");
    write_svg_plot(cfg.out_dir + "/curves.svg",
                   fmt::format("{} on {}: {}", first_mixer,
                               task_json.value("corpus", task_json.value("dataset", task.type())),
                               metric_name),
                   metric_name, curves_from_log(log_path, "metric"));
  };

  TrainResult result;
  result.unit = task.unit();
  result.ranks = comm.size();
  result.grad_shards = shards;
  tell(fmt::format("training {} parameters on {}, batch {}, steps {}..{}", model.num_parameters(),
                   task_json.dump(), cfg.batch, progress.step, progress.horizon));
  if (several || shards > 1)
    tell(fmt::format("{} rank{} ({}), {} gradient shards of {} lanes, {} reduction", comm.size(),
                     several ? "s" : "", comm.name(), shards, layout.lanes_per_shard(),
                     dist::reduce_mode_name(mode)));
  model.train();
  double window_loss = 0;
  int64_t window_n = 0, items = 0;
  // Rank 0 validates alone (the task's evaluation is not split by lanes) while the others wait.
  auto validate = [&]() {
    if (lead) {
      ProfileScope scope("validation");
      result.valid = task.evaluate(model, "valid", cfg.eval_batches);
      const auto [name, value] = task.loss_metric(result.valid.loss);
      json rec = {{"split", "valid"},
                  {"step", progress.step},
                  {"loss", result.valid.loss},
                  {"metric", value},
                  {"metrics", result.valid.to_json()}};
      log->write(rec);
      say(ev, fmt::format("step {} valid loss {:.4f} ({} {:.4f})", progress.step, result.valid.loss,
                          result.valid.primary, result.valid.headline()));
      plot();
    }
    comm.barrier();
  };
  const int64_t fit_from = std::max<int64_t>(cfg.warmup, 10) + kFitAfterWarmup;
  while (progress.step < progress.horizon) {
    comm.note_step(progress.step);
    if (cfg.time_limit_s > 0 && progress.step >= fit_from &&
        (progress.step - fit_from) % kRefitEvery == 0) {
      const double now = agreed(elapsed());
      const double per_step = now / double(progress.step);
      const double left = cfg.time_limit_s - now;
      const int64_t fits = std::min<int64_t>(
          cfg.steps,
          progress.step + 1 + static_cast<int64_t>(std::max(0.0, 0.97 * left) / per_step));
      if (fits != progress.horizon) {
        progress.horizon = std::max(fits, cfg.warmup + 1);
        schedule.total_steps = progress.horizon;
        if (progress.step == fit_from)
          tell(fmt::format("time limit {:.0f} s at {:.3f} s/step: about {} steps of {}",
                           cfg.time_limit_s, per_step, progress.horizon, cfg.steps));
      }
    }
    TaskBatch b;
    {
      ProfileScope scope("step: next batch");
      b = task.next_batch();  // the whole global batch, on every rank
    }
    if (carries) {
      if (b.fresh_state) dp.reset_state();
      dp.detach_state();  // truncated BPTT: the carried state starts a new tape
    }
    const double lr = schedule.lr_at(progress.step);
    opt.set_lr(lr);
    opt.zero_grad();
    const double l = dp.compute_gradients(task, b);
    if (cfg.clip > 0) {
      ProfileScope scope("step: gradient clipping");
      optim::clip_grad_norm(model.parameters(), cfg.clip);
    }
    {
      ProfileScope scope("step: optimiser");
      opt.step();
    }
    ++progress.step;
    RILL_CHECK(std::isfinite(l), "[train] the loss became {} at step {}", l, progress.step);
    window_loss += l, ++window_n;
    items += b.items;
    progress.elapsed_s = elapsed();
    const double here = clock() - t0;
    result.items_per_s = here > 0 ? double(items) / here : 0;
    if (ev.on_step)
      ev.on_step({progress.step, progress.horizon, l, lr, progress.elapsed_s, result.items_per_s,
                  result.unit});
    if (progress.step % 10 == 0 || progress.step == progress.horizon) {
      result.train_loss = window_loss / double(window_n);
      if (lead)
        log->write({{"split", "train"},
                    {"step", progress.step},
                    {"loss", result.train_loss},
                    {"metric", task.loss_metric(result.train_loss).second},
                    {"lr", lr},
                    {result.unit + "_per_s", result.items_per_s},
                    {"elapsed_s", progress.elapsed_s}});
      window_loss = 0, window_n = 0;
    }
    if (several) {
      // Rank 0's clock and Ctrl-C decide for every rank, so that all stop at the same step.
      double control[2] = {progress.elapsed_s, ev.should_stop && ev.should_stop() ? 1.0 : 0.0};
      comm.broadcast(control, sizeof control, 0);
      progress.elapsed_s = control[0];
      result.out_of_time = cfg.time_limit_s > 0 && progress.elapsed_s > cfg.time_limit_s &&
                           progress.step < progress.horizon;
      result.interrupted = control[1] != 0;
    } else {
      result.out_of_time = cfg.time_limit_s > 0 && progress.elapsed_s > cfg.time_limit_s &&
                           progress.step < progress.horizon;
      result.interrupted = ev.should_stop && ev.should_stop();
    }
    if (progress.step % cfg.eval_every == 0 || progress.step == progress.horizon ||
        result.out_of_time || result.interrupted)
      validate();
    if (progress.step % cfg.checkpoint_every == 0 || result.interrupted || result.out_of_time)
      save();
    if (result.interrupted) {
      tell(fmt::format("interrupted: checkpoint saved at step {} in {}", progress.step, ckpt));
      break;
    }
    if (result.out_of_time) {
      tell(fmt::format("time limit of {:.0f} s reached at step {}", cfg.time_limit_s,
                       progress.step));
      break;
    }
  }
  comm.note_step(progress.step);
  if (!result.interrupted && !result.out_of_time) save();
  if (window_n > 0) result.train_loss = window_loss / double(window_n);
  plot();
  result.steps = progress.step;
  result.seconds = progress.elapsed_s;
  result.reduce_s = dp.reduce_seconds();
  if (dp.reduce_calls() > 0) result.reduce_s_per_step = result.reduce_s / double(dp.reduce_calls());
  return result;
}

}  // namespace rill
