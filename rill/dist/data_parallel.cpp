// One data-parallel step's gradient and the per-shard carried state (data_parallel.h).
#include "rill/dist/data_parallel.h"

#include <cstring>

#include "rill/core/profiler.h"
#include "rill/dist/state_shards.h"

namespace rill::dist {

TaskBatch shard_batch(const TaskBatch& batch, int64_t shard, int64_t shards) {
  const int64_t b = batch.inputs.size(0);
  RILL_CHECK(b % shards == 0 && batch.targets.defined() && batch.targets.dim() >= 1 &&
                 batch.targets.size(0) == b,
             "[train] a batch of inputs {} and targets {} does not split into {} shards of lanes",
             shape_str(batch.inputs.shape()),
             batch.targets.defined() ? shape_str(batch.targets.shape()) : "(none)", shards);
  const int64_t lanes = b / shards;
  TaskBatch s;
  s.inputs = batch.inputs.narrow(0, shard * lanes, lanes).clone();
  s.targets = batch.targets.narrow(0, shard * lanes, lanes).clone();
  s.fresh_state = batch.fresh_state;
  s.items = batch.items / shards;
  return s;
}

DataParallel::DataParallel(Communicator& comm, SequenceModel& model, const ShardLayout& layout,
                           ReduceMode mode, bool carries_state)
    : comm_(comm),
      model_(model),
      layout_(layout),
      carries_(carries_state),
      plain_(layout.shards == 1 && comm.name() == "local"),
      params_(model.parameters()),
      reducer_(comm, mode) {
  RILL_CHECK(layout.ranks == comm.size() && layout.rank == comm.rank(),
             "[dist] the shard layout is for rank {} of {}, the group has rank {} of {}",
             layout.rank, layout.ranks, comm.rank(), comm.size());
  RILL_CHECK(!params_.empty(), "[train] the model has no parameters to train");
  dtype_ = params_[0].dtype();
  int64_t p = 0;
  for (const Tensor& t : params_) {
    RILL_CHECK(t.dtype() == dtype_,
               "[train] data-parallel training needs every parameter in one dtype; the model "
               "mixes {} and {}",
               dtype_name(dtype_), dtype_name(t.dtype()));
    p += t.numel();
  }
  flat_size_ = padded_length(p + 1);  // zeros after the loss: see padded_length
  if (!plain_) tree_ = std::make_unique<TreeSum>(flat_size_, dtype_);
  states_.resize(size_t(layout_.local_shards()));
}

void DataParallel::reset_state() {
  for (State& s : states_) s = model_.init_state(layout_.lanes_per_shard());
}

void DataParallel::detach_state() {
  for (State& s : states_) s.detach();
}

void DataParallel::set_full_state(const State& full) {
  if (plain_) {
    states_[0] = full;
    return;
  }
  std::vector<State> all = split_state(full, layout_.shards);
  for (int64_t k = 0; k < layout_.local_shards(); ++k)
    states_[size_t(k)] = std::move(all[size_t(layout_.first_shard() + k)]);
}

State DataParallel::gather_full_state() {
  if (plain_) return states_[0];
  if (comm_.size() == 1) return join_states(states_);
  std::vector<std::string> packed = comm_.gather_bytes(pack_states(states_), 0);
  if (comm_.rank() != 0) return State();
  std::vector<State> all;
  for (const std::string& bytes : packed)
    for (State& s : unpack_states(bytes)) all.push_back(std::move(s));
  RILL_CHECK(int64_t(all.size()) == layout_.shards,
             "[dist] gathered {} shard states from the ranks, expected {}", all.size(),
             layout_.shards);
  return join_states(all);
}

namespace {

template <class T>
void scale_into(T* dst, const T* src, int64_t n, double factor) {
  const T f = T(factor);
#pragma omp parallel for simd schedule(static) if (n > (1 << 18))
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * f;
}

// The loss of `batch` from `state` (null: none carried), its gradients accumulated.
Tensor forward_backward(Task& task, SequenceModel& model, const TaskBatch& batch, State* state) {
  Tensor loss;
  {
    ProfileScope scope("step: forward and loss (outside kernels)");
    loss = task.loss(model, batch, state);
  }
  {
    ProfileScope scope("step: backward (outside nodes)");
    loss.backward();
  }
  return loss;
}

}  // namespace

double DataParallel::compute_gradients(Task& task, const TaskBatch& batch) {
  if (plain_)
    return forward_backward(task, model_, batch, carries_ ? &states_[0] : nullptr).item<double>();
  const int64_t S = layout_.shards;
  auto generators = model_.generators();
  std::vector<uint64_t> start;
  for (auto& [name, g] : generators) start.push_back(g->offset());
  const int64_t esize = int64_t(dtype_size(dtype_));
  std::vector<char> defined(params_.size(), 0);
  for (int64_t k = 0; k < layout_.local_shards(); ++k) {
    const int64_t shard = layout_.first_shard() + k;
    TaskBatch sb;
    {
      ProfileScope scope("step: next batch");
      sb = shard_batch(batch, shard, S);
    }
    if (S > 1)
      for (size_t i = 0; i < generators.size(); ++i)
        generators[i].second->set_state(generators[i].second->seed(),
                                        start[i] + uint64_t(shard) * kShardCounterStride);
    for (Tensor& p : params_) p.zero_grad();
    const Tensor loss =
        forward_backward(task, model_, sb, carries_ ? &states_[size_t(k)] : nullptr);
    ProfileScope scope("step: shard gradients into the tree");
    for (size_t i = 0; i < generators.size(); ++i)
      RILL_CHECK(
          generators[i].second->offset() - (start[i] + uint64_t(shard) * kShardCounterStride) <=
              kShardCounterStride,
          "[train] generator \"{}\" drew more than 2^32 numbers in one shard", generators[i].first);
    Tensor leaf = tree_->next_leaf();
    char* out = static_cast<char*>(leaf.data_ptr());
    int64_t at = 0;
    for (size_t i = 0; i < params_.size(); ++i) {
      const Tensor g = params_[i].grad();
      const bool has = g.defined();
      RILL_CHECK(k == 0 || bool(defined[i]) == has,
                 "[train] parameter {} got a gradient in one shard and none in another", i);
      defined[i] = has;
      const int64_t n = params_[i].numel();
      if (has)
        std::memcpy(out + at * esize, g.contiguous().data_ptr(), size_t(n * esize));
      else
        std::memset(out + at * esize, 0, size_t(n * esize));
      at += n;
    }
    RILL_DISPATCH_FLOAT(dtype_, "train", T, reinterpret_cast<T*>(out)[at] = T(loss.item<double>()));
    tree_->commit();
  }
  if (S > 1)
    for (size_t i = 0; i < generators.size(); ++i)
      generators[i].second->set_state(generators[i].second->seed(),
                                      start[i] + uint64_t(S) * kShardCounterStride);
  Tensor sum = tree_->result();
  {
    ProfileScope scope("step: gradient all-reduce");
    reducer_.reduce(sum);
  }
  // The mean over the global batch: every rank scales the same sum by the same 1/S.
  ProfileScope scope("step: reduced gradients into .grad");
  const char* in = static_cast<const char*>(sum.data_ptr());
  int64_t at = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t n = params_[i].numel();
    if (defined[i]) {
      Tensor g = params_[i].grad();
      if (!g.is_contiguous()) {
        g = Tensor::empty(params_[i].shape(), dtype_);
        params_[i].set_grad(g);
      }
      RILL_DISPATCH_FLOAT(
          dtype_, "train", T,
          scale_into(g.data<T>(), reinterpret_cast<const T*>(in) + at, n, 1.0 / double(S)));
    }
    at += n;
  }
  double total = 0;
  RILL_DISPATCH_FLOAT(dtype_, "train", T, total = double(reinterpret_cast<const T*>(in)[at]));
  return total / double(S);
}

}  // namespace rill::dist
