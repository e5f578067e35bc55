// Test fixtures for whole runs: a small learnable corpus prepared in a temporary folder and a
// tiny run configuration over it.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "rill/train/train_config.h"
#include "tests/support/files.h"

namespace rill::testing {

// Counting sentences ("one then two.\n two then three.\n ..."): learnable from a few characters.
std::string pattern_text(int sentences = 3000);
// Prepares pattern_text() as the byte corpus "pattern" under data_dir.
void prepare_pattern_corpus(const std::string& data_dir);

// A tiny language-modelling run on the "pattern" corpus: 2 layers of d_model 32, the given
// mixer, batch 8 x seq 32, carried state reset every 2 segments.
TrainConfig tiny_lm_run(const std::string& data_dir, const std::string& out_dir,
                        const nlohmann::json& mixer, const std::string& dtype = "f32");

}  // namespace rill::testing
