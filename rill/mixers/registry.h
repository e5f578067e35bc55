// Builds a mixer from its JSON description, so a model's layers are configuration:
//   {"type": "linear_attention", "heads": 4, "feature_map": "elu1", "normalize": true,
//    "form": "chunked", "chunk": 64}
//   {"type": "softmax_attention", "heads": 4, "positions": "rotary", "window": 0,
//    "step_mode": "kv_cache"}
// Unknown types and keys, and values of the wrong type, are errors that name them.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>

#include "rill/mixers/mixer.h"

namespace rill {

std::shared_ptr<Mixer> make_mixer(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                                  DType dtype);

}  // namespace rill
