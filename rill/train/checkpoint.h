// Training checkpoints: one safetensors file holding the model's weights ("model."), the
// optimiser's state ("optim.") and the carried recurrent state ("state.", when the task carries
// one), with metadata: the model config (to rebuild it), the task description, the run's
// settings, and the training progress (step, data position, RNG states, the learning-rate
// horizon, training seconds so far). Written atomically (temp file, fsync, rename): a crash at
// any moment leaves the previous checkpoint intact. Everything a resumed run needs to continue
// bitwise as if never interrupted is in it.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "rill/core/rng.h"
#include "rill/mixers/state.h"
#include "rill/models/sequence_model.h"
#include "rill/nn/module.h"
#include "rill/optim/optimizer.h"

namespace rill {

struct TrainingProgress {
  int64_t step = 0;                       // optimiser steps done
  uint64_t data_position = 0;             // where the task's batches resume
  std::map<std::string, Generator> rngs;  // every generator the run draws from, by name
  int64_t horizon = 0;                    // the step the learning-rate schedule ends at
  double elapsed_s = 0;                   // training seconds so far, across resumes
};

// What a checkpoint says about itself (read without loading any tensor).
struct CheckpointInfo {
  nlohmann::json model;  // the model config (make_model rebuilds it)
  nlohmann::json task;   // the task description (Task::describe)
  nlohmann::json run;    // the run's settings (TrainConfig::to_json), null when absent
  TrainingProgress progress;
  std::string weights_sha256;  // of the weights as saved: identifies this checkpoint's model
  bool has_optimizer = false, has_state = false;
};

struct CheckpointContents {
  nlohmann::json model, task, run;
  const nn::Module* weights = nullptr;
  const optim::Optimizer* optimizer = nullptr;  // may be null
  const State* state = nullptr;                 // the carried state; may be null
  TrainingProgress progress;
};
void save_checkpoint(const std::string& path, const CheckpointContents& contents);

// Reads and validates the metadata: a file that is not a rill checkpoint, or lacks a part,
// gets an error that says what is missing.
CheckpointInfo read_checkpoint_info(const std::string& path);

// Loads the weights into `model` (whose config must equal the checkpoint's: the differences are
// named), and, when given, the optimiser state and the carried state. Nothing is modified when
// it refuses.
void load_checkpoint(const std::string& path, const nlohmann::json& model_config, nn::Module& model,
                     optim::Optimizer* optimizer = nullptr, State* state = nullptr);

// A trained model rebuilt from a checkpoint's config and loaded, in eval mode.
struct LoadedModel {
  CheckpointInfo info;
  std::shared_ptr<SequenceModel> model;
};
LoadedModel load_model(const std::string& path);

// SHA-256 over every tensor's name, shape, dtype and bytes, in state_dict order.
std::string weights_sha256(const nn::Module& model);

}  // namespace rill
