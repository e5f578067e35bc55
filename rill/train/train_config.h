// The configuration of a training run (one JSON file): the model, the data and the optimiser.
//   {"corpus": "bible-kjv", "model": {...LMConfig...}, "batch": 16, "seq": 128, "steps": 2000,
//    "lr": 3e-3, "warmup": 100, ...}
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "rill/models/language_model.h"

namespace rill {

struct TrainConfig {
  std::string corpus = "bible-kjv";
  std::string data_dir = "data";
  std::string out_dir = "runs/default";
  LMConfig model;
  int64_t batch = 16;  // parallel lanes of the token stream
  int64_t seq = 128;   // tokens per segment (truncated BPTT length)
  int64_t steps = 1000;
  // > 0: fit the run into this many seconds: after the warm-up the measured speed sets how many
  // steps fit (and the cosine horizon), and training stops (and saves) at the limit regardless.
  // The run's length then depends on the machine; without a limit runs are deterministic.
  double time_limit_s = 0;
  double lr = 3e-3, min_lr = 3e-4, weight_decay = 0.1, clip = 1.0;
  double beta1 = 0.9, beta2 = 0.99;
  int64_t warmup = 100;
  bool carry_state = true;  // carry (detached) recurrent state across segments
  // With carry_state: start a fresh state every this many segments (0: never). Plain linear
  // attention has no decay, so a state summed over a whole epoch blurs into a global average;
  // a bounded carry keeps the context the model learns on close to what it is used with.
  int64_t reset_every = 0;
  int64_t eval_every = 250, eval_segments = 8;  // validation: segments per lane
  int64_t checkpoint_every = 500;
  uint64_t seed = 1;

  static TrainConfig from_json(const nlohmann::json& j);  // strict: unknown keys are errors
  static TrainConfig from_file(const std::string& path);
  nlohmann::json to_json() const;
};

}  // namespace rill
