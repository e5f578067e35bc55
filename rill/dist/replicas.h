// Keeping the ranks' copies of a run identical: rank 0's weights sent to every rank at the start
// (every rank builds the model from the same seed, but another machine's math library could
// round an initialiser differently), rank 0's checkpoint file sent to every rank on resume (the
// other machines need not see rank 0's disk), and a check that the weights still agree.
#pragma once
#include <string>

#include "rill/dist/communicator.h"
#include "rill/nn/module.h"

namespace rill::dist {

// Every parameter and buffer of `module` takes rank 0's values.
void broadcast_weights(Communicator& comm, nn::Module& module);

// True on rank 0 when every rank passed the same `value` as rank 0 (e.g. its weights' SHA-256,
// weights_sha256 in train/checkpoint.h); true on the other ranks. Collective.
bool same_on_every_rank(Communicator& comm, const std::string& value);

// Rank 0's file at `path` made readable on every rank: rank 0 gets `path` back; the others get a
// private copy under the temporary folder, removed when the returned object goes.
class SharedFile {
 public:
  SharedFile(Communicator& comm, const std::string& path);
  ~SharedFile();
  SharedFile(const SharedFile&) = delete;
  SharedFile& operator=(const SharedFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool temporary_ = false;
};

}  // namespace rill::dist
