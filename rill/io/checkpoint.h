// Training checkpoints: model weights, optimiser state, RNG states, data position and step in
// one safetensors file, with the model's JSON config in its metadata. Written atomically (temp
// file, fsync, rename): a crash at any moment leaves the previous checkpoint intact.
#pragma once
#include <map>
#include <string>
#include <utility>

#include "rill/core/rng.h"
#include "rill/nn/module.h"
#include "rill/optim/optimizer.h"

namespace rill {

struct TrainingProgress {
  int64_t step = 0;
  uint64_t data_position = 0;                // where the data stream resumes
  std::map<std::string, Generator> rngs;     // every generator the run draws from, by name
};

// config_json: the model's configuration (compared on load). optimizer may be null. extra:
// more metadata stored as is and never compared (e.g. the run's settings).
void save_checkpoint(const std::string& path, const std::string& config_json,
                     const nn::Module& model, const optim::Optimizer* optimizer,
                     const TrainingProgress& progress,
                     const std::map<std::string, std::string>& extra = {});

// Restores everything save_checkpoint wrote. Refuses a checkpoint whose config or tensor shapes
// differ from the model's, naming each difference; the model is untouched when it refuses.
TrainingProgress load_checkpoint(const std::string& path, const std::string& config_json,
                                 nn::Module& model, optim::Optimizer* optimizer);

// The config stored in a checkpoint (to rebuild a model before loading it).
std::string checkpoint_config(const std::string& path);
// All of a checkpoint's metadata (config, training state, extra entries).
std::map<std::string, std::string> checkpoint_metadata(const std::string& path);

}  // namespace rill
