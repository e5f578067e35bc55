// State: named tensors with clone, detach, nesting, byte counts, and safetensors save/load.
#include "rill/mixers/state.h"

#include "rill/io/safetensors.h"

namespace rill {

void State::set(const std::string& name, Tensor t) {
  for (auto& [n, v] : tensors_)
    if (n == name) {
      v = std::move(t);
      return;
    }
  tensors_.emplace_back(name, std::move(t));
}

Tensor State::get(const std::string& name) const {
  for (const auto& [n, v] : tensors_)
    if (n == name) return v;
  fail("[state] no tensor \"{}\" in a state holding {} tensors", name, tensors_.size());
}

Tensor State::writable(const std::string& name) {
  Tensor t = get(name);
  if (t.grad_fn() || !t.is_contiguous()) {
    t = t.detach().clone();
    set(name, t);
  }
  return t;
}

bool State::has(const std::string& name) const {
  for (const auto& [n, v] : tensors_)
    if (n == name) return true;
  return false;
}

std::string State::layout_difference(const State& reference, bool shapes) const {
  if (tensors_.size() != reference.tensors_.size())
    return fmt::format("it has {} tensors, not {}", tensors_.size(), reference.tensors_.size());
  for (const auto& [name, t] : reference.tensors_) {
    if (!has(name)) return fmt::format("it lacks the tensor {}", name);
    if (shapes && get(name).shape() != t.shape())
      return fmt::format("its tensor {} is {}, not {}", name, shape_str(get(name).shape()),
                         shape_str(t.shape()));
  }
  return "";
}

State State::clone() const {
  State s;
  for (const auto& [n, v] : tensors_) s.tensors_.emplace_back(n, v.detach().clone());
  return s;
}

void State::detach() {
  for (auto& [n, v] : tensors_) v = v.detach();
}

size_t State::bytes() const {
  size_t b = 0;
  for (const auto& [n, v] : tensors_) b += v.nbytes();
  return b;
}

void State::insert(const std::string& prefix, const State& s) {
  for (const auto& [n, v] : s.tensors_) set(prefix + "." + n, v);
}

State State::sub(const std::string& prefix) const {
  State s;
  const std::string p = prefix + ".";
  for (const auto& [n, v] : tensors_)
    if (n.rfind(p, 0) == 0) s.tensors_.emplace_back(n.substr(p.size()), v);
  return s;
}

void State::save(const std::string& path,
                 const std::map<std::string, std::string>& metadata) const {
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "rill-state-1";
  save_safetensors(path, tensors_, meta);
}

State State::load(const std::string& path, std::map<std::string, std::string>* metadata) {
  SafetensorsReader r(path);
  auto it = r.metadata().find("format");
  RILL_CHECK(it != r.metadata().end() && it->second == "rill-state-1",
             "[state] {} is not a saved rill state", path);
  State s;
  for (const std::string& name : r.names()) s.tensors_.emplace_back(name, r.load(name));
  if (metadata) *metadata = r.metadata();
  return s;
}

}  // namespace rill
