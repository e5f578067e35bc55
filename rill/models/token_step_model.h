// TokenStepModel: the part of a SequenceModel over token ids whose step form is its own forward
// on one token (the block-recurrent model and CRT: their state is a clock plus fixed-shape caches,
// so one token through forward_with_resets is the step). It checks the ids, and steps with or
// without resets through forward_with_resets. pad_rows keeps such a model's KV caches one shape.
#pragma once
#include "rill/models/sequence_model.h"

namespace rill {

class TokenStepModel : public SequenceModel {
 public:
  // ids [B], resets [B] (undefined: none) -> [B, out_dim]; never records a tape.
  Tensor step_with_resets(const Tensor& ids, State& state, const Tensor& resets) override;

 protected:
  explicit TokenStepModel(const char* name) : name_(name) {}
  Tensor step_impl(const Tensor& ids, State& state) override;  // ids [B] -> [B, out_dim]
  // Token ids [B, T] (dims 2) or [B] (dims 1), i64 or i32; the error names the model and `what`.
  void check_ids(const Tensor& ids, int64_t dims, const char* what) const;

 private:
  const char* name_;  // in error messages: "[name] ..."
};

// t [B, H, n, Dh] followed by zero rows up to `rows` [B, H, rows, Dh]: a cache that keeps one
// shape, so a stream's state bytes stay constant.
Tensor pad_rows(const Tensor& t, int64_t rows);

}  // namespace rill
