// The streaming figure of "Attention as an RNN" (Feng et al. 2024), reproduced: the cumulative
// time and the memory to process a stream of N tokens one at a time (B = 1, no tape), for each
// model config given, side by side in one run. A Transformer with a KV cache should show memory
// growing linearly and cumulative time growing quadratically; a recurrent mixer (Aaren, linear
// attention) flat memory and linear time.
//
// Each model is built for token input (vocabulary 256 unless --vocab), put in eval mode, and fed
// token ids (t * 31 + 7) % V through its tight stepper (make_stepper(1, f32): the path
// generation and continue_stream take) where it has one, else its tensor step(); the report says
// which path each model and each block's mixer took. At log-spaced checkpoints (and at N, and at
// evenly spaced points for the plot) it records:
//   cumulative s  wall-clock seconds since the stream's first token (every step timed);
//   state bytes   State::bytes() of the state it holds: the bytes its tensors view (a KV cache's
//                 spare capacity is not counted; see softmax_attention.h);
//   live bytes    the allocator's live bytes: every tensor alive (the weights, the stepper's
//                 buffers, the state including a KV cache's spare capacity); the stepper's
//                 packed weights are held outside the allocator and reported beside it;
//   cached bytes  freed blocks the allocator keeps for reuse (in the JSON).
// The allocator's cache is released before each model, so each starts cold. A model that runs
// past --time-limit stops there, and the tables say where.
//
// Writes into --out DIR: streaming.md (the tables), streaming.json (every recorded point) and
// streaming.svg (two panels: cumulative time against tokens, memory against tokens), drawn with
// rill's own plotting (train/metrics.h). On a shared machine run it with OMP_WAIT_POLICY=passive.
// Usage:
//   bench_streaming [--tokens 100000] [--checkpoints 11] [--plot-points 40] [--threads 1]
//                   [--vocab 256] [--time-limit 600] [--out runs/streaming]
//                   [--d-model D] [--mlp-hidden F] [--layers L] [--paper-size] [--profile]
//                   CONFIG.json...
// A CONFIG is a run config (its "model" is used) or a bare model config. --d-model,
// --mlp-hidden and --layers override every stack config's sizes; --paper-size is the paper's
// model (one block, d_model 512, FFN 2048). --profile adds the profiler's table of where each
// stream spent its time (it costs a little per scope).
//
// Sizes. The Transformer's stream costs about N^2 / 2 reads of a key and a value row per layer
// (memory-bound once its KV cache outgrows the caches), so its time goes with d_model x N^2.
// Measured on the 2-vCPU Xeon (Emerald Rapids, 1 thread, load 1-2.5): 20,000 tokens took 14.5 s
// at d_model 128 and 7.7 s at 64, 50,000 tokens 45.6 s at 64, and the whole 100,000 181 s at 64.
// So configs/aaren/stream_*.json (one pre-norm block, d_model 64, 4 heads, MLP 256) run the
// default N = 100,000 in about 3 minutes for the Transformer and a second for a recurrent mixer;
// d_model 128 would take 6 minutes or more. The paper's block (--paper-size: d_model 512, FFN
// 2048; 3,282,432 parameters here with the byte embedding and final norm and no attention biases,
// against the paper's 3,152,384) took 14.5 s for 10,000 tokens and 166 s for 30,000 (11.7 ms per
// token at the end, its 117 MiB cache far outside the caches; a recurrent mixer 0.5 ms): about 3
// minutes with --tokens 30000, more than half an hour at 100,000.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bench/support/machine.h"
#include "bench/support/model_configs.h"
#include "rill/backend/cpu/denormals.h"
#include "rill/backend/cpu/isa.h"
#include "rill/core/allocator.h"
#include "rill/core/error.h"
#include "rill/core/profiler.h"
#include "rill/io/atomic_file.h"
#include "rill/models/sequence_model.h"
#include "rill/models/stack_model.h"
#include "rill/train/metrics.h"

using namespace rill;
using namespace rill::bench;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Point {
  int64_t tokens = 0;
  double seconds = 0;
  size_t state_bytes = 0, live_bytes = 0, cached_bytes = 0;
};

struct Run {
  std::string config, name, path;  // the file, its stem, the step path taken
  json model;
  int64_t parameters = 0, done = 0;
  bool stopped = false;  // by the time limit
  size_t live_before = 0, peak_live = 0;
  size_t packed_bytes = 0;          // the stepper's packed weights, outside the allocator
  double start_us = 0, end_us = 0;  // median per-token time near the start and near the end
  std::vector<Point> points;
  std::string profile;  // the profiler's table, with --profile
};

std::string seconds_text(double s) {
  return s < 1     ? fmt::format("{:.3f}", s)
         : s < 100 ? fmt::format("{:.2f}", s)
                   : fmt::format("{:.1f}", s);
}

// K token counts spaced evenly in log between 1 and n, n included.
std::vector<int64_t> log_spaced(int64_t n, int k) {
  std::vector<int64_t> v;
  for (int i = 0; i < k; ++i) {
    const double f = k == 1 ? 1.0 : double(i) / double(k - 1);
    v.push_back(std::clamp<int64_t>(std::llround(std::pow(double(n), f)), 1, n));
  }
  v.push_back(n);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

double median_us(const std::vector<float>& dt, int64_t lo, int64_t hi) {
  std::vector<double> v(dt.begin() + lo, dt.begin() + hi);
  return median(v) * 1e6;
}

// Which path each block's mixer takes inside the model's stepper.
std::string mixer_paths(SequenceModel& model, bool tight) {
  auto* stack = dynamic_cast<StackModel*>(&model);
  if (!stack) return "";
  std::vector<std::string> parts;
  for (const auto& blk : stack->blocks) {
    std::string how;
    if (!tight)
      how = "tensor step";
    else if (blk->kind == BlockKind::gru_gated)
      how = "block's tensor step";
    else if (dynamic_cast<TensorStepFallback*>(
                 blk->mixer->make_stepper(1, WeightFormat::f32).get()))
      how = "its tensor step inside the stepper";
    else
      how = "its own tight stepper";
    parts.push_back(fmt::format("{} ({})", blk->mixer->kind(), how));
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

Run stream(const std::string& config, json model_json, const ModelIO& io, int64_t n,
           const std::vector<int64_t>& record_at, double time_limit, bool profile) {
  Run r;
  r.config = config;
  r.name = fs::path(config).stem().string();
  Allocator& alloc = Allocator::instance();
  alloc.release_cache();  // every model starts cold, as the first did
  auto model = make_model(model_json, io, 1);
  model->eval();
  r.model = model->config_json();
  r.parameters = model->num_parameters();
  auto stepper = model->make_stepper(1, WeightFormat::f32);
  const bool tight = dynamic_cast<TensorModelStepper*>(stepper.get()) == nullptr;
  r.packed_bytes = tight ? stepper->weight_bytes() : 0;
  r.path = tight ? "tight stepper (make_stepper)" : "tensor step() (no tight path for this model)";
  const std::string mixers = mixer_paths(*model, tight);
  if (!mixers.empty()) r.path += "; mixers: " + mixers;

  State state = model->init_state(1);
  Tensor ids = Tensor::zeros({1}, DType::i64);
  int64_t* id = ids.data<int64_t>();
  std::vector<float> dt(size_t(n), 0.0f);
  r.live_before = alloc.live_bytes();
  alloc.reset_peak();
  auto record = [&](int64_t tokens, double seconds) {
    r.points.push_back({tokens, seconds, state.bytes(), alloc.live_bytes(), alloc.cached_bytes()});
  };
  record(0, 0.0);
  size_t next = 0;
  Profiler::reset();
  Profiler::enable(profile);
  const auto t0 = Clock::now();
  auto prev = t0;
  for (int64_t t = 0; t < n; ++t) {
    *id = (t * 31 + 7) % io.vocab;
    if (tight)
      stepper->step(ids, state);
    else
      model->step(ids, state);
    const auto now = Clock::now();
    dt[size_t(t)] = float(std::chrono::duration<double>(now - prev).count());
    prev = now;
    const double elapsed = std::chrono::duration<double>(now - t0).count();
    r.done = t + 1;
    while (next < record_at.size() && record_at[next] < r.done) ++next;
    if (next < record_at.size() && record_at[next] == r.done) record(r.done, elapsed);
    if (elapsed > time_limit && r.done < n) {
      r.stopped = true;
      record(r.done, elapsed);
      break;
    }
  }
  if (profile) r.profile = Profiler::table(std::chrono::duration<double>(prev - t0).count(), 12);
  Profiler::enable(false);
  r.peak_live = alloc.peak_bytes();
  const int64_t w = std::clamp<int64_t>(r.done / 10, 1, 1000);
  r.start_us =
      median_us(dt, std::min<int64_t>(10, r.done - w), std::min<int64_t>(10, r.done - w) + w);
  r.end_us = median_us(dt, r.done - w, r.done);
  return r;
}

// The point of run r at `tokens`, if it got there.
const Point* point_at(const Run& r, int64_t tokens) {
  for (const Point& p : r.points)
    if (p.tokens == tokens) return &p;
  return nullptr;
}

const char* kColors[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
const char* kLightColors[] = {"#f4a6a7", "#9ec5e8", "#a6dca6", "#cbb6e0", "#ffc894", "#cfb0a8"};

int run(int argc, char** argv) {
  int64_t n = 100000, d_model = 0, mlp_hidden = 0, layers = 0;
  int checkpoints = 11, plot_points = 40, threads = 1;
  double time_limit = 600;
  bool profile = false;
  ModelIO io{256, 0, 256};
  std::string out = "runs/streaming";
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      RILL_CHECK(i + 1 < argc, "[bench] {} needs a value", a);
      return argv[++i];
    };
    if (a == "--tokens")
      n = std::stoll(value());
    else if (a == "--checkpoints")
      checkpoints = std::stoi(value());
    else if (a == "--plot-points")
      plot_points = std::stoi(value());
    else if (a == "--threads")
      threads = std::stoi(value());
    else if (a == "--vocab")
      io.vocab = io.out_dim = std::stoll(value());
    else if (a == "--time-limit")
      time_limit = std::stod(value());
    else if (a == "--out")
      out = value();
    else if (a == "--d-model")
      d_model = std::stoll(value());
    else if (a == "--mlp-hidden")
      mlp_hidden = std::stoll(value());
    else if (a == "--layers")
      layers = std::stoll(value());
    else if (a == "--profile")
      profile = true;
    else if (a == "--paper-size")
      d_model = 512, mlp_hidden = 2048, layers = 1;
    else if (a.rfind("--", 0) == 0)
      fail("[bench] unknown option {}", a);
    else
      paths.push_back(a);
  }
  RILL_CHECK(!paths.empty(), "[bench] give at least one model config (e.g. configs/aaren/*.json)");
  RILL_CHECK(
      n > 0 && checkpoints > 0 && plot_points >= 0 && threads > 0 && io.vocab > 0 && time_limit > 0,
      "[bench] --tokens, --checkpoints, --threads, --vocab and --time-limit must be positive");
  omp_set_num_threads(threads);
  const cpu::FlushDenormalsGuard flush;  // as the trainer and the rill command run

  const std::vector<int64_t> table_at = log_spaced(n, checkpoints);
  std::vector<int64_t> record_at = table_at;
  for (int i = 1; i <= plot_points; ++i) record_at.push_back(n * i / plot_points);
  std::sort(record_at.begin(), record_at.end());
  record_at.erase(std::unique(record_at.begin(), record_at.end()), record_at.end());
  record_at.erase(std::remove(record_at.begin(), record_at.end(), int64_t(0)), record_at.end());

  // Every config is read and its model built once before any stream runs, so that a config this
  // build cannot make (a mixer type it lacks) fails at once, not after the first model's stream.
  std::vector<json> models;
  for (const std::string& path : paths) {
    json model_json = read_model_config(path);
    if (model_json.value("type", "stack") == "stack") {
      if (d_model) model_json["d_model"] = d_model;
      if (mlp_hidden) model_json["mlp_hidden"] = mlp_hidden;
      if (layers) model_json["n_layers"] = layers;
    }
    try {
      make_model(model_json, io, 1);
    } catch (const std::exception& e) {
      fail("[bench] {}: {}", path, e.what());
    }
    models.push_back(model_json);
  }

  std::string md;
  auto emit = [&](const std::string& s) {
    std::fputs(s.c_str(), stdout);
    std::fflush(stdout);
    md += s;
  };
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  const std::string load_start = loadavg();
  emit(fmt::format("# bench_streaming: a stream of {} tokens, one at a time (B = 1, no tape)\n\n",
                   n));
  emit(fmt::format("- CPU: {}; AVX-512: {}; kernels at {}\n", cpu_model(), avx512_flags(),
                   cpu::simd_level_name(cpu::simd_level())));
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  emit(fmt::format(
      "- {} thread(s); load average at start: {}; OMP_WAIT_POLICY={}; "
      "OPENBLAS_CORETYPE={}\n",
      threads, load_start, wait ? wait : "(unset: active)", coretype ? coretype : "(unset)"));
  emit(fmt::format("- token ids (t * 31 + 7) % {}; time limit {} s per model\n", io.vocab,
                   time_limit));
  if (d_model || mlp_hidden || layers)
    emit(fmt::format("- sizes overridden: d_model {}, mlp_hidden {}, n_layers {}\n",
                     d_model ? std::to_string(d_model) : "as configured",
                     mlp_hidden ? std::to_string(mlp_hidden) : "as configured",
                     layers ? std::to_string(layers) : "as configured"));

  std::vector<Run> runs;
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string& path = paths[i];
    runs.push_back(stream(path, models[i], io, n, record_at, time_limit, profile));
    const Run& r = runs.back();
    const json& m = r.model;
    emit(fmt::format(
        "- {}: {} parameters{}; packed weights {} (outside the allocator); path: {}\n", r.name,
        r.parameters,
        m.contains("d_model")
            ? fmt::format(" (d_model {}, mlp_hidden {}, {} layer(s))", m["d_model"].get<int64_t>(),
                          m["mlp_hidden"].get<int64_t>(), m["n_layers"].get<int64_t>())
            : "",
        bytes_text(r.packed_bytes), r.path));
  }
  emit(fmt::format("- load average at the end: {}\n\n", loadavg()));
  for (const Run& r : runs)
    if (!r.profile.empty())
      emit(fmt::format("Where {}'s stream spent its time (--profile):\n\n{}\n", r.name, r.profile));

  // The summary: one row per model.
  emit(
      "| model | tokens | cumulative s | per-token us, start | per-token us, end | state at end | "
      "live at end (before the stream) | peak live |\n|---|---|---|---|---|---|---|---|\n");
  for (const Run& r : runs) {
    const Point& last = r.points.back();
    emit(fmt::format("| {} | {}{} | {} | {:.1f} | {:.1f} | {} | {} ({}) | {} |\n", r.name, r.done,
                     r.stopped ? fmt::format(" of {} (stopped by the time limit)", n) : "",
                     seconds_text(last.seconds), r.start_us, r.end_us, bytes_text(last.state_bytes),
                     bytes_text(last.live_bytes), bytes_text(r.live_before),
                     bytes_text(r.peak_live)));
  }
  emit("\n");
  for (size_t k = 1; k < runs.size(); ++k) {
    // Cumulative time and state at the last token count both streams reached and recorded
    // (the per-token times near the end come from where each stopped).
    const Point *a = nullptr, *b = nullptr;
    for (const Point& p : runs[0].points)
      if (const Point* q = point_at(runs[k], p.tokens); q && p.tokens > 0) a = &p, b = q;
    emit(fmt::format(
        "- {} / {}: per-token time near the end {:.2f}x{} (near the start {:.2f}x); at {} tokens, "
        "cumulative time {:.2f}x and state {:.1f}x\n",
        runs[0].name, runs[k].name, runs[0].end_us / runs[k].end_us,
        runs[0].done == runs[k].done ? "" : " (where each stopped)",
        runs[0].start_us / runs[k].start_us, a ? a->tokens : 0, a ? a->seconds / b->seconds : 0.0,
        a ? double(a->state_bytes) / double(b->state_bytes) : 0.0));
  }

  // The checkpoints: per model, cumulative seconds, state bytes and live bytes.
  std::string head = "\n| tokens |", rule = "|---|";
  for (const Run& r : runs)
    head += fmt::format(" {} s | {} state | {} live |", r.name, r.name, r.name),
        rule += "---|---|---|";
  for (size_t k = 1; k < runs.size(); ++k)
    head += fmt::format(" time {} / {} |", runs[0].name, runs[k].name), rule += "---|";
  emit(head + "\n" + rule + "\n");
  std::vector<int64_t> rows = table_at;
  for (const Run& r : runs)
    if (r.stopped) rows.push_back(r.done);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  for (int64_t t : rows) {
    std::string line = fmt::format("| {} |", t);
    for (const Run& r : runs) {
      if (const Point* p = point_at(r, t))
        line += fmt::format(" {} | {} | {} |", seconds_text(p->seconds), bytes_text(p->state_bytes),
                            bytes_text(p->live_bytes));
      else if (r.stopped && t > r.done)
        line += fmt::format(" stopped at {} | | |", r.done);
      else
        line += " | | |";
    }
    for (size_t k = 1; k < runs.size(); ++k) {
      const Point *a = point_at(runs[0], t), *b = point_at(runs[k], t);
      line += a && b && b->seconds > 0 ? fmt::format(" {:.2f}x |", a->seconds / b->seconds) : " |";
    }
    emit(line + "\n");
  }

  // The files: tables, raw points, the two panels.
  fs::create_directories(out);
  json j;
  j["tokens"] = n;
  j["threads"] = threads;
  j["vocab"] = io.vocab;
  j["time_limit_s"] = time_limit;
  j["cpu"] = cpu_model();
  j["load_average_start"] = load_start;
  j["load_average_end"] = loadavg();
  for (const Run& r : runs) {
    json m;
    m["config"] = r.config, m["name"] = r.name, m["model"] = r.model, m["path"] = r.path;
    m["parameters"] = r.parameters, m["tokens_done"] = r.done, m["stopped"] = r.stopped;
    m["live_bytes_before"] = r.live_before, m["peak_live_bytes"] = r.peak_live;
    m["packed_weight_bytes"] = r.packed_bytes;
    m["per_token_us_start"] = r.start_us, m["per_token_us_end"] = r.end_us;
    for (const Point& p : r.points)
      m["points"].push_back({{"tokens", p.tokens},
                             {"seconds", p.seconds},
                             {"state_bytes", p.state_bytes},
                             {"live_bytes", p.live_bytes},
                             {"cached_bytes", p.cached_bytes}});
    j["models"].push_back(m);
  }
  auto write = [](const std::string& path, const std::string& text) {
    write_file_atomically(path, [&](int fd) { write_all(fd, text.data(), text.size(), path); });
  };
  write(out + "/streaming.json", j.dump(1) + "\n");
  write(out + "/streaming.md", md);
  Plot time{"Cumulative time, one token at a time", "tokens", "seconds", {}};
  Plot memory{"Memory", "tokens", "MiB", {}};
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    Curve t{r.name, kColors[i % 6], {}}, s{r.name + " state", kColors[i % 6], {}},
        l{r.name + " live", kLightColors[i % 6], {}};
    for (const Point& p : r.points) {
      t.points.emplace_back(double(p.tokens), p.seconds);
      s.points.emplace_back(double(p.tokens), double(p.state_bytes) / double(1 << 20));
      l.points.emplace_back(double(p.tokens), double(p.live_bytes) / double(1 << 20));
    }
    time.curves.push_back(t);
    memory.curves.push_back(s);
    memory.curves.push_back(l);
  }
  write_svg_plots(out + "/streaming.svg", {time, memory});
  std::printf("\nWrote %s/streaming.{md,json,svg}\n", out.c_str());
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
