// Splitting, joining and packing carried states (state_shards.h).
#include "rill/dist/state_shards.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "rill/autograd/grad_mode.h"
#include "rill/ops/index.h"

namespace rill::dist {

using nlohmann::json;

std::vector<State> split_state(const State& full, int64_t parts) {
  RILL_CHECK(parts >= 1, "[dist] split a state into {} parts", parts);
  NoGradGuard no_grad;
  std::vector<State> out(static_cast<size_t>(parts));
  for (const auto& [name, t] : full.tensors()) {
    if (t.dim() == 0) {
      for (State& s : out) s.set(name, t.detach().clone());
      continue;
    }
    RILL_CHECK(t.size(0) % parts == 0,
               "[dist] state \"{}\" is {}: its {} lanes do not split into {} equal shards", name,
               shape_str(t.shape()), t.size(0), parts);
    const int64_t lanes = t.size(0) / parts;
    for (int64_t k = 0; k < parts; ++k)
      out[size_t(k)].set(name, t.detach().narrow(0, k * lanes, lanes).clone());
  }
  return out;
}

State join_states(const std::vector<State>& parts) {
  RILL_CHECK(!parts.empty(), "[dist] join no states");
  NoGradGuard no_grad;
  State full;
  for (const auto& [name, first] : parts[0].tensors()) {
    std::vector<Tensor> pieces;
    for (const State& p : parts) {
      RILL_CHECK(p.tensors().size() == parts[0].tensors().size() && p.has(name),
                 "[dist] the shards' states hold different tensors (\"{}\")", name);
      const Tensor t = p.get(name).detach();
      RILL_CHECK(t.dtype() == first.dtype() && t.dim() == first.dim(),
                 "[dist] state \"{}\" is {} {} in one shard and {} {} in another", name,
                 dtype_name(t.dtype()), shape_str(t.shape()), dtype_name(first.dtype()),
                 shape_str(first.shape()));
      pieces.push_back(t);
    }
    if (first.dim() == 0) {
      const Tensor a = first.contiguous();
      for (const Tensor& t : pieces)
        RILL_CHECK(std::memcmp(t.contiguous().data_ptr(), a.data_ptr(), a.nbytes()) == 0,
                   "[dist] state \"{}\" (one value for every lane) differs between shards", name);
      full.set(name, a.clone());
    } else {
      full.set(name, concat(pieces, 0).contiguous());
    }
  }
  return full;
}

std::string pack_states(const std::vector<State>& states) {
  json header = json::array();
  std::string data;
  for (const State& s : states) {
    json tensors = json::array();
    for (const auto& [name, t] : s.tensors()) {
      const Tensor c = t.detach().contiguous();
      tensors.push_back({name, dtype_name(c.dtype()), c.shape()});
      data.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
    }
    header.push_back(tensors);
  }
  const std::string h = header.dump();
  const uint64_t n = h.size();
  std::string out(reinterpret_cast<const char*>(&n), sizeof n);
  return out + h + data;
}

std::vector<State> unpack_states(const std::string& bytes) {
  uint64_t n = 0;
  RILL_CHECK(bytes.size() >= sizeof n, "[dist] a packed state of {} bytes", bytes.size());
  std::memcpy(&n, bytes.data(), sizeof n);
  RILL_CHECK(n <= bytes.size() - sizeof n, "[dist] a packed state's header is cut off");
  const json header = json::parse(bytes.substr(sizeof n, n));
  size_t at = sizeof n + n;
  std::vector<State> out;
  for (const json& tensors : header) {
    State s;
    for (const json& e : tensors) {
      const std::string dt = e.at(1).get<std::string>();
      DType dtype = DType::f32;
      bool known = false;
      for (DType d : {DType::f32, DType::f64, DType::i32, DType::i64})
        if (dt == dtype_name(d)) dtype = d, known = true;
      RILL_CHECK(known, "[dist] a packed state names dtype \"{}\"", dt);
      Tensor t = Tensor::empty(e.at(2).get<std::vector<int64_t>>(), dtype);
      RILL_CHECK(at + t.nbytes() <= bytes.size(), "[dist] a packed state's data is cut off");
      std::memcpy(t.data_ptr(), bytes.data() + at, t.nbytes());
      at += t.nbytes();
      s.set(e.at(0).get<std::string>(), t);
    }
    out.push_back(std::move(s));
  }
  RILL_CHECK(at == bytes.size(), "[dist] a packed state has {} bytes too many", bytes.size() - at);
  return out;
}

}  // namespace rill::dist
