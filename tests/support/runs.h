// Test fixtures for whole runs: a small learnable corpus prepared in a temporary folder, a tiny
// run configuration over it, and a temporary folder that cleans itself up.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "rill/train/train_config.h"

namespace rill::testing {

// A fresh folder under the system temp dir, named after the running test; removed on exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& str() const { return path_; }
  std::string operator/(const std::string& p) const { return path_ + "/" + p; }

 private:
  std::string path_;
};

// Counting sentences ("one then two.\n two then three.\n ..."): learnable from a few characters.
std::string pattern_text(int sentences = 3000);
// Prepares pattern_text() as the byte corpus "pattern" under data_dir.
void prepare_pattern_corpus(const std::string& data_dir);

// A tiny language-modelling run on the "pattern" corpus: 2 layers of d_model 32, the given
// mixer, batch 8 x seq 32, carried state reset every 2 segments.
TrainConfig tiny_lm_run(const std::string& data_dir, const std::string& out_dir,
                        const nlohmann::json& mixer, const std::string& dtype = "f32");

}  // namespace rill::testing
