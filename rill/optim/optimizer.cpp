// The optimiser base: parameter groups, the step loop, and state save/load.
#include "rill/optim/optimizer.h"

#include <map>

#include "rill/autograd/grad_mode.h"

namespace rill::optim {

std::vector<ParamGroup> param_groups(const nn::Module& model, double weight_decay) {
  ParamGroup decay{{}, weight_decay}, no_decay{{}, 0.0};
  for (const auto& p : model.named_parameters())
    (p.kind == nn::ParamKind::weight ? decay : no_decay).params.emplace_back(p.name, p.tensor);
  return {decay, no_decay};
}

std::vector<ParamGroup> single_group(const nn::Module& model, double weight_decay) {
  ParamGroup g{{}, weight_decay};
  for (const auto& p : model.named_parameters()) g.params.emplace_back(p.name, p.tensor);
  return {g};
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr)
    : groups_(std::move(groups)), lr_(lr) {
  for (const auto& g : groups_)
    for (const auto& [name, p] : g.params)
      RILL_CHECK(is_floating(p.dtype()), "[optimizer] parameter \"{}\" is {}, not floating", name,
                 dtype_name(p.dtype()));
}

void Optimizer::step() {
  NoGradGuard no_grad;
  ++steps_;
  for (auto& g : groups_)
    for (auto& [name, p] : g.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      RILL_CHECK(grad.shape() == p.shape() && grad.dtype() == p.dtype(),
                 "[optimizer] gradient of \"{}\" is {} {}, parameter is {} {}", name,
                 dtype_name(grad.dtype()), shape_str(grad.shape()), dtype_name(p.dtype()),
                 shape_str(p.shape()));
      RILL_CHECK(p.is_contiguous(), "[optimizer] parameter \"{}\" is not contiguous", name);
      update(name, p, grad.contiguous(), g.weight_decay, steps_);
    }
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& [name, p] : g.params) p.zero_grad();
}

Tensor Optimizer::slot(const std::string& slot, const std::string& name, const Shape& shape,
                       DType dtype) {
  const std::string key = slot + "." + name;
  for (auto& [k, t] : state_)
    if (k == key) {
      RILL_CHECK(t.shape() == shape && t.dtype() == dtype,
                 "[optimizer] state \"{}\" is {} {}, expected {} {}", key, dtype_name(t.dtype()),
                 shape_str(t.shape()), dtype_name(dtype), shape_str(shape));
      return t;
    }
  state_.emplace_back(key, Tensor::zeros(shape, dtype));
  return state_.back().second;
}

bool Optimizer::has_slot(const std::string& slot, const std::string& name) const {
  const std::string key = slot + "." + name;
  for (const auto& [k, t] : state_)
    if (k == key) return true;
  return false;
}

NamedTensors Optimizer::state() const {
  NamedTensors out = state_;
  out.emplace_back("step", Tensor::scalar(static_cast<double>(steps_), DType::i64));
  return out;
}

void Optimizer::load_state(const NamedTensors& state) {
  // Validate everything before changing anything, so a failed load leaves the optimiser intact.
  std::map<std::string, Tensor> given(state.begin(), state.end());
  auto it = given.find("step");
  RILL_CHECK(it != given.end(), "[optimizer] the saved state has no \"step\"");
  const int64_t steps = it->second.item<int64_t>();
  std::map<std::string, Shape> known;
  for (const auto& g : groups_)
    for (const auto& [name, p] : g.params) known[name] = p.shape();
  NamedTensors loaded;
  for (const auto& [key, t] : state) {
    if (key == "step") continue;
    auto dot = key.find('.');
    RILL_CHECK(dot != std::string::npos, "[optimizer] malformed state name \"{}\"", key);
    std::string param = key.substr(dot + 1);
    RILL_CHECK(known.count(param), "[optimizer] state \"{}\" is for an unknown parameter \"{}\"",
               key, param);
    loaded.emplace_back(key, t.clone());
  }
  steps_ = steps;
  state_ = std::move(loaded);
}

}  // namespace rill::optim
