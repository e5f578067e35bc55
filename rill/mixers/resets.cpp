// Resets inside a sequence: the mask, per-stream state replacement and the piecewise forward.
#include "rill/mixers/resets.h"

#include <vector>

#include "rill/mixers/mixer.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/op_util.h"

namespace rill {

Tensor reset_mask(const Tensor& resets, int64_t batch, int64_t len, DType dtype, const char* who) {
  RILL_CHECK(
      resets.defined() && resets.dim() == 2 && resets.size(0) == batch && resets.size(1) == len,
      "[{}] resets must be [B, T] = [{}, {}], got {}", who, batch, len,
      resets.defined() ? shape_str(resets.shape()) : "undefined");
  return nonzero_mask(resets, dtype);  // not differentiable (resets are not)
}

State reset_streams(const State& s, const std::function<State()>& make_fresh, const Tensor& lanes,
                    const char* who) {
  const int64_t batch = lanes.size(0);
  bool all = true, any = false;
  RILL_DISPATCH_FLOAT(lanes.dtype(), who, T, {
    const T* lp = lanes.contiguous().data<T>();
    for (int64_t b = 0; b < batch; ++b) {
      all = all && lp[b] != T(0);
      any = any || lp[b] != T(0);
    }
  });
  if (!any) return s;
  const State fresh = make_fresh();
  if (all) return fresh;
  State out;
  for (const auto& [name, t] : s.tensors()) {
    const Tensor f = fresh.get(name);
    RILL_CHECK(t.dim() >= 1 && t.size(0) == batch && t.shape() == f.shape(),
               "[{}] cannot reset some streams of a batch: state tensor '{}' is {} (a fresh one "
               "is {}), not one slice per stream",
               who, name, shape_str(t.shape()), shape_str(f.shape()));
    Shape lane_shape(t.dim(), 1);
    lane_shape[0] = batch;
    // A selection, not a blend: a fresh state may hold -inf (Aaren's empty logsumexp), and
    // -inf * 0 is NaN. The tape flows into the streams that carry on.
    out.set(name, where(lanes.view(lane_shape), f, t));
  }
  return out;
}

Tensor forward_in_reset_pieces(Mixer& mixer, const Tensor& x, State* state, const Tensor& mask) {
  const int64_t batch = x.size(0), len = x.size(1);
  // The cuts: every t where some stream resets (t = 0 resets the incoming state).
  std::vector<int64_t> cuts;
  RILL_DISPATCH_FLOAT(mask.dtype(), "resets", T, {
    const T* mp = mask.data<T>();
    for (int64_t t = 0; t < len; ++t)
      for (int64_t b = 0; b < batch; ++b)
        if (mp[b * len + t] != T(0)) {
          cuts.push_back(t);
          break;
        }
  });
  State local = state ? *state : mixer.init_state(batch);
  const State fresh = mixer.init_state(batch);
  std::vector<Tensor> outs;
  int64_t t = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const int64_t end = i < cuts.size() ? cuts[i] : len;
    if (end > t) outs.push_back(mixer.forward(x.narrow(1, t, end - t), &local));
    if (i < cuts.size())
      local = reset_streams(
          local, [&] { return fresh; }, mask.select(1, end).contiguous(), mixer.kind().c_str());
    t = end;
  }
  if (state) *state = local;
  return outs.size() == 1 ? outs[0] : concat(outs, 1);
}

}  // namespace rill
