// Test fixtures for whole runs (see runs.h).
#include "tests/support/runs.h"

#include <filesystem>

#include "rill/data/corpus.h"

namespace rill::testing {

namespace fs = std::filesystem;

std::string pattern_text(int sentences) {
  const char* words[] = {"one", "two", "three", "four", "five", "six", "seven"};
  std::string text;
  for (int i = 0; i < sentences; ++i)
    text += fmt::format("{} then {}.\n", words[i % 7], words[(i + 1) % 7]);
  return text;
}

void prepare_pattern_corpus(const std::string& data_dir) {
  data::CorpusInfo info;
  info.name = "pattern";
  info.registry = "test";
  info.package = "none";
  info.description = "made in the test";
  data::prepare_text(info, pattern_text(), data_dir);
}

TrainConfig tiny_lm_run(const std::string& data_dir, const std::string& out_dir,
                        const nlohmann::json& mixer, const std::string& dtype) {
  TrainConfig c;
  c.task = {{"type", "language_modeling"}, {"corpus", "pattern"}, {"seq", 32}, {"reset_every", 2}};
  c.model = {
      {"d_model", 32}, {"n_layers", 2}, {"mlp_hidden", 64}, {"dtype", dtype}, {"mixers", {mixer}}};
  c.data_dir = data_dir;
  c.out_dir = out_dir;
  c.batch = 8;
  c.steps = 300;
  c.warmup = 20;
  c.lr = 1e-2;
  c.min_lr = 1e-3;
  c.eval_every = 100;
  c.eval_batches = 4;
  c.checkpoint_every = 150;
  return c;
}

}  // namespace rill::testing
