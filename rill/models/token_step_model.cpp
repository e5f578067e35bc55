// TokenStepModel: the id checks and the one-token step through forward_with_resets.
#include "rill/models/token_step_model.h"

#include "rill/ops/index.h"

namespace rill {

void TokenStepModel::check_ids(const Tensor& ids, int64_t dims, const char* what) const {
  RILL_CHECK(ids.defined() && ids.dim() == dims &&
                 (ids.dtype() == DType::i64 || ids.dtype() == DType::i32),
             "[{}] {} expects token ids {} (i64), got {}", name_, what,
             dims == 2 ? "[B, T]" : "[B]",
             ids.defined() ? fmt::format("{} {}", dtype_name(ids.dtype()), shape_str(ids.shape()))
                           : "undefined");
}

Tensor TokenStepModel::step_impl(const Tensor& ids, State& state) {
  check_ids(ids, 1, "step");
  return forward(ids.reshape({ids.size(0), 1}), &state).view({ids.size(0), io().out_dim});
}

Tensor TokenStepModel::step_with_resets(const Tensor& ids, State& state, const Tensor& resets) {
  check_ids(ids, 1, "step");
  const int64_t batch = ids.size(0);
  RILL_CHECK(!resets.defined() || (resets.dim() == 1 && resets.size(0) == batch),
             "[{}] step resets must be [B] = [{}], got {}", name_, batch,
             shape_str(resets.shape()));
  NoGradGuard no_grad;
  const Tensor r = resets.defined() ? resets.reshape({batch, 1}) : Tensor();
  return forward_with_resets(ids.reshape({batch, 1}), &state, r).view({batch, io().out_dim});
}

Tensor pad_rows(const Tensor& t, int64_t rows) {
  if (t.size(2) == rows) return t;
  return concat({t, Tensor::zeros({t.size(0), t.size(1), rows - t.size(2), t.size(3)}, t.dtype())},
                2);
}

}  // namespace rill
