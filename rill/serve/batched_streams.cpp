// Batched stepping (batched_streams.h): slots in one batched state, resized by powers of two.
#include "rill/serve/batched_streams.h"

#include <algorithm>

#include "rill/autograd/grad_mode.h"
#include "rill/ops/index.h"

namespace rill::serve {

BatchedStreams::BatchedStreams(SequenceModel& model, WeightFormat format, ContextPolicy policy)
    : model_(model), format_(format), policy_(policy), batched_(model.info(0).constant_state) {}

ModelStepper& BatchedStreams::stepper(int64_t batch) {
  constexpr size_t kKept = 3;
  auto it = std::find_if(steppers_.begin(), steppers_.end(),
                         [&](const auto& s) { return s.first == batch; });
  if (it == steppers_.end() || it + 1 != steppers_.end()) {
    std::pair<int64_t, std::unique_ptr<ModelStepper>> s;
    if (it != steppers_.end()) {
      s = std::move(*it);
      steppers_.erase(it);
    } else {
      s = {batch, model_.make_stepper(batch, format_)};
    }
    steppers_.push_back(std::move(s));
    if (steppers_.size() > kKept) steppers_.erase(steppers_.begin());
  }
  return *steppers_.back().second;
}

void BatchedStreams::resize(int64_t capacity) {
  std::vector<int64_t> rows;  // the members' rows of the old batch, in row order
  std::vector<int> slots(capacity, -1);
  for (int64_t i = 0; i < capacity_; ++i)
    if (slots_[i] >= 0) {
      members_.at(slots_[i]).slot = int64_t(rows.size());
      slots[rows.size()] = slots_[i];
      rows.push_back(i);
    }
  const int64_t kept = int64_t(rows.size());
  if (capacity == 0) {  // nobody left: no batch until someone joins
    batch_ = State(), slots_.clear(), capacity_ = 0;
    return;
  }
  const State fresh = capacity > kept ? model_.init_state(capacity - kept) : State();
  State next;
  const State one = model_.init_state(1);  // (named: a temporary's tensors() would dangle)
  for (const auto& [name, t] : one.tensors()) {
    std::vector<Tensor> parts;
    if (kept > 0)
      parts.push_back(index_select(batch_.get(name), 0, Tensor::from_vector(rows, {kept})));
    if (capacity > kept) parts.push_back(fresh.get(name));
    next.set(name, parts.size() == 1 ? parts[0].contiguous() : concat(parts, 0));
  }
  batch_ = std::move(next);
  slots_ = std::move(slots);
  capacity_ = capacity;
}

int BatchedStreams::join(Stream* stream, const SamplerOptions& opt) {
  RILL_CHECK(stream && stream->pending >= 0,
             "[serve] a stream joins the batch with a pending token");
  NoGradGuard no_grad;
  const int handle = next_handle_++;
  Member m{stream, opt, -1};
  if (batched_) {
    // Every tensor of a stream's state is one row of the batch's.
    const std::string why = stream->state.layout_difference(model_.init_state(1), true);
    RILL_CHECK(why.empty(), "[serve] the stream's state does not fit the model: {}", why);
    if (int64_t(members_.size()) == capacity_) resize(capacity_ == 0 ? 1 : 2 * capacity_);
    int64_t slot = 0;
    while (slots_[slot] >= 0) ++slot;
    for (const auto& [name, t] : stream->state.tensors())
      batch_.get(name).narrow(0, slot, 1).copy_(t);
    stream->state = State();  // the batch holds it until the stream leaves
    slots_[slot] = handle;
    m.slot = slot;
  }
  members_.emplace(handle, m);
  return handle;
}

void BatchedStreams::leave(int handle) {
  auto it = members_.find(handle);
  RILL_CHECK(it != members_.end(), "[serve] no member with handle {}", handle);
  if (batched_) {
    const int64_t slot = it->second.slot;
    State out;
    for (const auto& [name, t] : batch_.tensors()) out.set(name, t.narrow(0, slot, 1).clone());
    it->second.stream->state = std::move(out);
    slots_[slot] = -1;
  }
  members_.erase(it);
  if (batched_ && capacity_ > 1 && int64_t(members_.size()) * 4 <= capacity_) {
    int64_t c = 1;
    while (c < int64_t(members_.size())) c *= 2;
    resize(members_.empty() ? 0 : c);
  }
}

std::vector<std::pair<int, int64_t>> BatchedStreams::step() {
  NoGradGuard no_grad;
  std::vector<std::pair<int, int64_t>> out;
  if (members_.empty()) return out;
  if (!batched_) {
    for (auto& [handle, m] : members_) {
      prepare_step(model_, *m.stream, policy_);
      const Tensor id = Tensor::from_vector<int64_t>({m.stream->pending}, {1});
      const Tensor logits = stepper(1).step(id, m.stream->state);
      m.stream->pending = sample(logits, m.opt, m.stream->generator)[0];
      out.emplace_back(handle, m.stream->pending);
    }
    return out;
  }
  std::vector<int64_t> ids(capacity_, 0);  // free rows read token 0 and are never looked at
  for (auto& [handle, m] : members_) {
    Stream& s = *m.stream;
    if (prepare_step(model_, s, policy_))  // rebuilt from its recent tokens: into its row
      for (const auto& [name, t] : s.state.tensors())
        batch_.get(name).narrow(0, m.slot, 1).copy_(t);
    ids[m.slot] = s.pending;
  }
  const Tensor logits = stepper(capacity_).step(Tensor::from_vector(ids, {capacity_}), batch_);
  for (auto& [handle, m] : members_) {
    m.stream->pending = sample(logits.narrow(0, m.slot, 1), m.opt, m.stream->generator)[0];
    out.emplace_back(handle, m.stream->pending);
  }
  return out;
}

}  // namespace rill::serve
