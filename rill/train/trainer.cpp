#include "rill/train/trainer.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <filesystem>

#include "rill/autograd/grad_mode.h"
#include "rill/data/batcher.h"
#include "rill/io/atomic_file.h"
#include "rill/io/checkpoint.h"
#include "rill/optim/adamw.h"
#include "rill/optim/clip.h"
#include "rill/optim/schedule.h"
#include "rill/train/metrics.h"
#include "rill/train/progress.h"

namespace rill {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// Installs the Ctrl-C handler for the duration of training, then restores the old one.
class SigintScope {
 public:
  SigintScope() {
    g_interrupted = false;
    prev_ = std::signal(SIGINT, on_sigint);
  }
  ~SigintScope() { std::signal(SIGINT, prev_); }

 private:
  void (*prev_)(int);
};

}  // namespace

double readable_metric(double loss_nats, data::TokenizerKind kind) {
  return kind == data::TokenizerKind::bytes ? loss_nats / std::log(2.0) : std::exp(loss_nats);
}

const char* readable_metric_name(data::TokenizerKind kind) {
  return kind == data::TokenizerKind::bytes ? "bits/byte" : "perplexity";
}

json checkpoint_model_config(const TrainConfig& config, data::TokenizerKind kind) {
  return {{"model", config.model.to_json()},
          {"corpus", config.corpus},
          {"tokenizer", data::tokenizer_kind_name(kind)}};
}

double evaluate(LanguageModel& model, const data::TokenFile& tokens, int64_t batch, int64_t seq,
                int64_t segments, const CarryPolicy& carry) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  data::Batcher batcher(tokens, batch, seq);
  segments = std::min<int64_t>(segments, batcher.segments_per_epoch());
  State state = model.init_state(batch);
  double total = 0;
  for (int64_t s = 0; s < segments; ++s) {
    data::Batch b = batcher.next();
    if (carry.fresh(b.segment)) state = model.init_state(batch);
    total += model.loss(b.inputs, b.targets, &state).item<double>();
  }
  model.train(was_training);
  return total / std::max<int64_t>(segments, 1);
}

TrainResult train(const TrainConfig& cfg_in, bool resume) {
  TrainConfig cfg = cfg_in;
  data::PreparedCorpus corpus = data::open_corpus(cfg.corpus, cfg.data_dir);
  const int64_t vocab = corpus.tokenizer->vocab_size();
  if (cfg.model.vocab != vocab) cfg.model.vocab = vocab;  // the corpus decides the vocabulary
  fs::create_directories(cfg.out_dir);
  const std::string ckpt = cfg.out_dir + "/checkpoint.safetensors";
  const std::string log_path = cfg.out_dir + "/metrics.jsonl";
  const std::string config_text = checkpoint_model_config(cfg, corpus.kind).dump();

  LanguageModel model(cfg.model);
  optim::AdamW opt(optim::param_groups(model, cfg.weight_decay), cfg.lr,
                   {cfg.beta1, cfg.beta2, 1e-8});
  optim::Schedule schedule{optim::ScheduleKind::cosine, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr};
  TrainingProgress progress;
  if (resume) {
    RILL_CHECK(fs::exists(ckpt), "[train] --resume: no checkpoint at {}", ckpt);
    progress = load_checkpoint(ckpt, config_text, model, &opt);
    for (auto& [name, g] : model.generators()) {
      auto it = progress.rngs.find(name);
      RILL_CHECK(it != progress.rngs.end(), "[train] {} lacks the RNG state of {}", ckpt, name);
      *g = it->second;
    }
  } else {
    fs::remove(log_path);  // a fresh run starts a fresh log
  }
  {
    std::string text = cfg.to_json().dump(2) + "\n";
    write_file_atomically(cfg.out_dir + "/config.json",
                          [&](int fd) { write_all(fd, text.data(), text.size(), cfg.out_dir); });
  }

  data::Batcher batcher(corpus.train, cfg.batch, cfg.seq, progress.data_position);
  MetricsLog log(log_path);
  auto save = [&]() {
    progress.data_position = batcher.position();
    progress.rngs.clear();
    for (auto& [name, g] : model.generators()) progress.rngs[name] = *g;
    save_checkpoint(ckpt, config_text, model, &opt, progress, {{"rill.run", cfg.to_json().dump()}});
  };
  auto plot = [&]() {
    write_svg_plot(cfg.out_dir + "/curves.svg",
                   fmt::format("{} on {}: {}", cfg.model.mixers.front().value("type", "model"),
                               cfg.corpus, readable_metric_name(corpus.kind)),
                   readable_metric_name(corpus.kind), curves_from_log(log_path, "metric"));
  };

  TrainResult result;
  result.metric_name = readable_metric_name(corpus.kind);
  SigintScope sigint;
  Progress bar(cfg.steps, progress.step);
  const int64_t first_step = progress.step;
  bar.message(fmt::format(
      "training {} parameters on {} ({} train tokens), {} lanes x {} tokens, steps {}..{}",
      model.num_parameters(), cfg.corpus, corpus.train.size(), cfg.batch, cfg.seq, progress.step,
      cfg.steps));
  const CarryPolicy carry{cfg.carry_state, cfg.reset_every};
  State state = model.init_state(cfg.batch);
  model.train();
  double window_loss = 0;
  int64_t window_n = 0, tokens = 0;
  auto validate = [&]() {
    double vl = evaluate(model, corpus.valid, cfg.batch, cfg.seq, cfg.eval_segments, carry);
    result.valid_loss = vl;
    result.valid_metric = readable_metric(vl, corpus.kind);
    log.write({{"split", "valid"},
               {"step", progress.step},
               {"loss", vl},
               {"metric", result.valid_metric}});
    bar.message(fmt::format("step {} valid loss {:.4f} ({} {:.4f})", progress.step, vl,
                            result.metric_name, result.valid_metric));
    plot();
  };
  // With a time limit, the cosine horizon is fitted to the steps that the measured speed allows
  // (after the warm-up, then refitted every 25 steps), so the learning rate has decayed when
  // time runs out.
  int64_t last_step = cfg.steps;
  const int64_t fit_from = progress.step + std::max<int64_t>(cfg.warmup, 10) + 10;
  while (progress.step < last_step) {
    if (cfg.time_limit_s > 0 && progress.step >= fit_from && (progress.step - fit_from) % 25 == 0) {
      const double per_step = bar.elapsed_s() / double(progress.step - first_step);
      const double left = cfg.time_limit_s - bar.elapsed_s();
      const int64_t fits = std::min<int64_t>(
          cfg.steps, progress.step + 1 + static_cast<int64_t>(0.97 * left / per_step));
      if (fits != last_step) {
        last_step = fits;
        schedule.total_steps = std::max(last_step, schedule.warmup_steps + 1);
        bar.set_total(last_step);
        if (progress.step == fit_from)
          bar.message(fmt::format("time limit {:.0f}s at {:.2f}s/step: about {} steps of {}",
                                  cfg.time_limit_s, per_step, last_step, cfg.steps));
      }
    }
    data::Batch b = batcher.next();
    if (b.reset || carry.fresh(b.segment)) state = model.init_state(cfg.batch);
    state.detach();  // truncated BPTT: the carried state starts a new tape
    const double lr = schedule.lr_at(progress.step);
    opt.set_lr(lr);
    opt.zero_grad();
    Tensor loss = model.loss(b.inputs, b.targets, &state);
    loss.backward();
    optim::clip_grad_norm(model.parameters(), cfg.clip);
    opt.step();
    ++progress.step;
    const double l = loss.item<double>();
    RILL_CHECK(std::isfinite(l), "[train] the loss became {} at step {}", l, progress.step);
    window_loss += l, ++window_n;
    tokens += cfg.batch * cfg.seq;
    bar.update(progress.step, l, lr, tokens);
    if (progress.step % 10 == 0 || progress.step == last_step) {
      result.train_loss = window_loss / window_n;
      log.write({{"split", "train"},
                 {"step", progress.step},
                 {"loss", result.train_loss},
                 {"metric", readable_metric(result.train_loss, corpus.kind)},
                 {"lr", lr},
                 {"tokens_per_s", bar.tokens_per_s()},
                 {"elapsed_s", bar.elapsed_s()}});
      window_loss = 0, window_n = 0;
    }
    const bool out_of_time = cfg.time_limit_s > 0 && bar.elapsed_s() > cfg.time_limit_s;
    if (progress.step % cfg.eval_every == 0 || progress.step == last_step || out_of_time)
      validate();
    if (progress.step % cfg.checkpoint_every == 0 || g_interrupted || out_of_time) save();
    if (g_interrupted) {
      result.interrupted = true;
      bar.message(
          fmt::format("interrupted: checkpoint saved at step {} in {}", progress.step, ckpt));
      break;
    }
    if (out_of_time) {
      bar.message(
          fmt::format("time limit of {:.0f}s reached at step {}", cfg.time_limit_s, progress.step));
      break;
    }
  }
  bar.finish();
  if (!result.interrupted) save();
  plot();
  result.steps = progress.step;
  result.seconds = bar.elapsed_s();
  result.tokens_per_s = bar.tokens_per_s();
  return result;
}

}  // namespace rill
