// The registry of sequence mixers. Each mixer registers itself in its own file, once:
//   static const MixerRegistration kRegistered({"linear_attention", "summary", build, examples});
// with its type name, a builder that parses its JSON config (refusing unknown keys) and a few
// example configurations. make_mixer builds any registered type; the contract tests and the
// mixer benchmark iterate over every registered mixer's examples, so a new mixer gets them
// without editing them.
//
// Every config may also carry "local": a short causal mixing of the mixer's input before its
// projections (local_context.h), which the registry applies around any mixer:
//   {"type": "linear_attention", "heads": 4, "local": "shift"}      token shift (RWKV)
//   {"type": "linear_attention", "heads": 4, "local": "conv4"}      depthwise causal conv, width 4
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rill/mixers/mixer.h"

namespace rill {

struct MixerSpec {
  std::string type;     // the "type" of its JSON config
  std::string summary;  // one line for listings
  // Builds from the whole config object (it holds "type"; "local" is already removed).
  std::function<std::shared_ptr<Mixer>(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                                       DType dtype)>
      build;
  // Realistic configurations that exercise its options, valid for any d_model divisible by 8
  // (the contract suite runs them at d_model 16, bench_mixers at 256).
  std::vector<nlohmann::json> examples;
};

struct MixerRegistration {
  explicit MixerRegistration(MixerSpec spec);
};

// Registered mixers in name order.
std::vector<const MixerSpec*> registered_mixers();

std::shared_ptr<Mixer> make_mixer(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                                  DType dtype);

}  // namespace rill
