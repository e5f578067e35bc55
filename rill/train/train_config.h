// The configuration of a training run (one JSON file): the task, the model and the optimiser.
//   {"task": {"type": "language_modeling", "corpus": "bible-kjv", "seq": 128},
//    "model": {"d_model": 256, "n_layers": 4, "mixers": [...]},
//    "batch": 16, "steps": 2000, "lr": 3e-3, "warmup": 50, "seed": 1, ...}
// "seed" is the one seed of a run: it initialises the model and every random draw of the task
// (shuffles) and of the model (dropout). The same seed and thread count repeat a run bitwise.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace rill {

struct TrainConfig {
  nlohmann::json task = {{"type", "language_modeling"}};
  nlohmann::json model = nlohmann::json::object();  // see models/stack_model.h
  std::string data_dir = "data";
  std::string out_dir = "runs/default";
  int64_t batch = 16;
  int64_t steps = 1000;
  // > 0: fit the run into this many seconds of training: after the warm-up the measured speed
  // sets how many steps fit (and the cosine horizon, refitted every 25 steps), and training
  // stops (and saves) at the limit regardless. The run's length then depends on the machine.
  double time_limit_s = 0;
  double lr = 3e-3, min_lr = 3e-4, weight_decay = 0.1;
  double clip = 1.0;  // global gradient-norm clip; 0: none
  double beta1 = 0.9, beta2 = 0.99;
  int64_t warmup = 100;
  int64_t eval_every = 250;  // steps between validations
  int64_t eval_batches = 8;  // batches per validation (0: the whole split)
  int64_t checkpoint_every = 500;
  uint64_t seed = 1;
  // Data-parallel training (rill/dist/): the global batch's lanes are split into grad_shards
  // gradient shards summed by a fixed tree, so any number of ranks that divides it gives the
  // same bits ("exact"), or summed by MPI's own all-reduce ("fast": not exact across rank
  // counts). 0: as many shards as ranks (a resumed run keeps its checkpoint's).
  int64_t grad_shards = 0;
  std::string allreduce = "exact";

  static TrainConfig from_json(const nlohmann::json& j);  // strict, then validate()
  static TrainConfig from_file(const std::string& path);
  // Range checks with the field's name; run again after command-line overrides.
  void validate() const;
  nlohmann::json to_json() const;
};

}  // namespace rill
