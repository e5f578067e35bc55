// Labelled sequence data sets for classification (one label per sequence): the registry
// (installed by package name), preparation into train/valid/test safetensors files with a
// checksummed manifest, and opening them.
//
// Prepared layout, data_dir/<name>/:
//   train.safetensors valid.safetensors test.safetensors, each holding
//     x  f32 [N, T, F]  N sequences of T steps of F features, scaled to [0, 1] as
//                       value / max_value (not standardised): pixel / 255 for Fashion-MNIST,
//                       value / 16 for the 8x8 digits
//     y  i64 [N]        the class, in [0, C)
//   manifest.json       written last: name, package and version, shapes, C and the class
//                       names, the split rule with its numbers, and the SHA-256 of each file
//
// An image becomes a sequence in row-major pixel order: T = rows and F = columns gives one row
// per step; T = rows * columns and F = 1 gives one pixel per step (sequential MNIST).
//
// Split rules (each split keeps the order the rule gives it):
//   official (IDX sources, which have their own test set): test is the official test set; valid
//     is the last valid_count examples of the official training set in file order; train is the
//     rest of it (Fashion-MNIST: 55,000 / 5,000 / 10,000).
//   shuffled (CSV sources, one pool of N): a seeded Fisher-Yates shuffle of 0..N-1
//     (std::mt19937_64(seed); for i = N-1 down to 1, swap positions i and rng() % (i + 1));
//     n_valid = floor(N * valid% / 100), n_test = floor(N * test% / 100); train is the first
//     N - n_valid - n_test of the shuffled order, valid the next n_valid, test the last n_test
//     (digits: 1,439 / 179 / 179 with seed 20240601, 10% and 10%).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rill/core/tensor.h"
#include "rill/data/dataset.h"

namespace rill::data {

enum class LabelledFormat {
  idx,  // extract roles train-images, train-labels, test-images, test-labels (IDX u8 arrays)
  csv,  // extract role csv: no header, one example per row, T * F values then the label
};

struct LabelledInfo {
  DatasetSource source;  // name, package, extraction commands, description
  LabelledFormat format = LabelledFormat::idx;
  int64_t steps = 0, features = 0;       // T and F
  double max_value = 255;                // x = value / max_value; values outside are refused
  std::vector<std::string> class_names;  // C of them
  int64_t valid_count = 0;               // official split: the last valid_count training examples
  int valid_percent = 10, test_percent = 10;  // shuffled split
  uint64_t seed = 0;                          // shuffled split
};

// Every registered labelled set: fashion-mnist-rows, fashion-mnist-pixels, digits.
const std::vector<LabelledInfo>& labelled_sets();
const LabelledInfo* find_labelled(std::string_view name);  // nullptr when unknown
// Throws for a name that is not a registered labelled set: an unknown name lists every known
// data set, a corpus or series name says what it is.
const LabelledInfo& labelled_info(std::string_view name);

// Installs the package when needed, extracts, splits and writes data_dir/<name>/.
DatasetReport prepare_labelled(const std::string& name, const std::string& data_dir,
                               const DatasetOptions& options = {});
// The same for a set described here rather than registered (tests use a made-up package).
DatasetReport prepare_labelled(const LabelledInfo& info, const std::string& data_dir,
                               const DatasetOptions& options = {});
// The part after extraction, from the bytes each extraction command would have printed.
DatasetReport prepare_labelled_from(const LabelledInfo& info, const RawFiles& raw,
                                    const std::string& data_dir,
                                    const DatasetOptions& options = {});

// Positions 0..n-1 in the shuffled order of the rule above (shared so tests can check it).
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed);

struct LabelledSplit {
  Tensor x;  // f32 [N, T, F], in [0, 1]
  Tensor y;  // i64 [N], in [0, C)
  int64_t size() const { return y.defined() ? y.size(0) : 0; }
};

struct LabelledSplits {
  std::string name;
  std::string dir;
  int64_t steps = 0, features = 0;  // T and F
  int64_t num_classes = 0;          // C
  std::vector<std::string> class_names;
  LabelledSplit train, valid, test;
  const LabelledSplit& split(std::string_view which) const;  // "train", "valid" or "test"
};

// Opens data_dir/<name>. Not prepared: an error with the `rill data NAME` command. A file that
// changed since preparation (SHA-256, checked when verify_checksums), a tensor of the wrong
// dtype or shape, or a label outside [0, C) gives its own error.
LabelledSplits open_labelled(const std::string& name, const std::string& data_dir,
                             bool verify_checksums = true);

}  // namespace rill::data
