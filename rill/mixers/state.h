// State: the recurrent state of a mixer (or of a whole model) as named tensors. It can be
// saved and loaded (safetensors), cloned (to fork a stream), detached (truncated BPTT) and
// measured in bytes. A model's state nests its layers' states under dotted prefixes.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rill/core/tensor.h"

namespace rill {

class State {
 public:
  void set(const std::string& name, Tensor t);
  Tensor get(const std::string& name) const;  // errors name the missing tensor
  bool has(const std::string& name) const;
  // The tensor `name`, ready for a step to update in place: one a tape may still read, or a
  // non-contiguous view, is first replaced in the state by a detached contiguous copy.
  Tensor writable(const std::string& name);
  bool empty() const { return tensors_.empty(); }
  const std::vector<std::pair<std::string, Tensor>>& tensors() const { return tensors_; }

  // Why this state cannot stand where `reference` (e.g. init_state(1)) does: other tensor
  // names, or, with `shapes`, a tensor of another shape; "" when it can.
  std::string layout_difference(const State& reference, bool shapes) const;

  State clone() const;  // deep copy: the two states evolve independently
  void detach();        // cuts autograd history, keeps the values
  size_t bytes() const;

  // Nesting: put `s` under "prefix.", and take back what is under it.
  void insert(const std::string& prefix, const State& s);
  State sub(const std::string& prefix) const;

  // Saves atomically with optional metadata; load() restores names, shapes, dtypes and values.
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  static State load(const std::string& path,
                    std::map<std::string, std::string>* metadata = nullptr);

 private:
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

}  // namespace rill
