// Module trees: dotted parameter names, state dicts, train/eval mode.
#include "rill/nn/module.h"

#include <map>

#include "rill/autograd/grad_mode.h"

namespace rill::nn {

Tensor Module::register_parameter(const std::string& name, Tensor t, ParamKind kind) {
  RILL_CHECK(t.defined(), "[module] parameter \"{}\" is undefined", name);
  for (const auto& p : params_)
    RILL_CHECK(p.name != name, "[module] parameter \"{}\" registered twice", name);
  t = t.detach();
  t.set_requires_grad(true);
  params_.push_back({name, t, kind});
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, std::vector<NamedParameter>& out) const {
  for (const auto& p : params_) out.push_back({prefix + p.name, p.tensor, p.kind});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

void Module::collect_buffers(const std::string& prefix,
                             std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, b);
  for (const auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

std::vector<NamedParameter> Module::named_parameters() const {
  std::vector<NamedParameter> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (const auto& p : named_parameters()) out.push_back(p.tensor);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_buffers("", out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : named_parameters()) n += p.tensor.numel();
  return n;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& p : named_parameters()) out.emplace_back(p.name, p.tensor);
  for (auto& b : named_buffers()) out.push_back(b);
  return out;
}

void Module::load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state) {
  std::map<std::string, Tensor> given(state.begin(), state.end());
  std::vector<std::string> problems;
  auto own = state_dict();
  for (const auto& [name, t] : own) {
    auto it = given.find(name);
    if (it == given.end()) {
      problems.push_back(fmt::format("missing \"{}\"", name));
    } else if (it->second.shape() != t.shape() || it->second.dtype() != t.dtype()) {
      problems.push_back(fmt::format("\"{}\" is {} {} in the state but {} {} in the model", name,
                                     dtype_name(it->second.dtype()), shape_str(it->second.shape()),
                                     dtype_name(t.dtype()), shape_str(t.shape())));
    }
  }
  for (const auto& [name, t] : given) {
    bool known = false;
    for (const auto& o : own) known = known || o.first == name;
    if (!known) problems.push_back(fmt::format("unexpected \"{}\"", name));
  }
  RILL_CHECK(problems.empty(), "[load_state_dict] the state does not match the model: {}",
             fmt::join(problems, "; "));
  NoGradGuard no_grad;
  for (auto& [name, t] : own) t.copy_(given.at(name));
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& p : named_parameters()) p.tensor.zero_grad();
}

}  // namespace rill::nn
