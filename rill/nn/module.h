// Module: a tree of named parameters (dotted names, as PyTorch state dicts use), buffers and
// child modules, with train/eval mode. Layers register what they own in their constructor.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rill/core/tensor.h"

namespace rill::nn {

// What a parameter is, so optimisers can treat kinds differently (no weight decay on biases,
// norm gains and embeddings by default).
enum class ParamKind { weight, bias, norm, embedding };

struct NamedParameter {
  std::string name;
  Tensor tensor;
  ParamKind kind;
};

class Module {
 public:
  virtual ~Module() = default;

  // Every parameter of this module and its children, depth first, in registration order.
  std::vector<NamedParameter> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  int64_t num_parameters() const;  // elements, not tensors

  // Parameters and buffers by dotted name.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  // Copies values in (no autograd); every name must exist on both sides with the same shape and
  // dtype, otherwise the error lists what is missing, unexpected or mismatched.
  void load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

 protected:
  // Registers t as a leaf that requires grad; returns the handle the layer keeps.
  Tensor register_parameter(const std::string& name, Tensor t, ParamKind kind = ParamKind::weight);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, std::vector<NamedParameter>& out) const;
  void collect_buffers(const std::string& prefix,
                       std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<NamedParameter> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace rill::nn
