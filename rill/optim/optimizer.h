// Optimiser base: parameter groups (each with its own weight decay), the learning rate, the step
// count, and state as named tensors so checkpoints can save and restore it exactly.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "rill/core/tensor.h"
#include "rill/nn/module.h"

namespace rill::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct ParamGroup {
  NamedTensors params;  // (dotted name, parameter)
  double weight_decay = 0;
};

// The default grouping: weight decay on weights only; none on biases, norm gains, embeddings.
std::vector<ParamGroup> param_groups(const nn::Module& model, double weight_decay);
// One group holding every parameter with the same weight decay.
std::vector<ParamGroup> single_group(const nn::Module& model, double weight_decay);

class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, double lr);
  virtual ~Optimizer() = default;

  // One update from each parameter's .grad (parameters without a gradient are left alone).
  void step();
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t step_count() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // Every state tensor as "<slot>.<param name>", plus the step count as "step" (an i64 scalar).
  NamedTensors state() const;
  // Restores state() output; names and shapes must match, else the error says what differs.
  void load_state(const NamedTensors& state);

 protected:
  // Updates one parameter p in place from grad g; t is the 1-based step number.
  virtual void update(const std::string& name, Tensor& p, const Tensor& g, double weight_decay,
                      int64_t t) = 0;
  // The state tensor `slot` of parameter `name`, created (zeros of `shape`) on first use.
  // Returned by value: a handle sharing the state storage (references into the list would dangle).
  Tensor slot(const std::string& slot, const std::string& name, const Shape& shape, DType dtype);
  bool has_slot(const std::string& slot, const std::string& name) const;

 private:
  std::vector<ParamGroup> groups_;
  double lr_;
  int64_t steps_ = 0;
  NamedTensors state_;  // "<slot>.<param name>" -> tensor, in creation order
};

}  // namespace rill::optim
