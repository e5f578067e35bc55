// Episode boundaries inside a sequence (DESIGN.md: the RL setting, and documents in a stream).
// A reset at (b, t) gives stream b a fresh state before token t. Mixers whose kernels take the
// resets natively (the gated-state family: a reset is a decay of exactly 0) zero the state in
// place; every other mixer is run piece by piece by the generic path here, which is exact for
// any mixer whose state carries all it knows of the past.
#pragma once
#include <functional>

#include "rill/mixers/state.h"

namespace rill {

class Mixer;

// resets as a [B, T] mask of 0 and 1 in dtype, after checking its shape against x [B, T, D].
// `who` names the caller in errors.
Tensor reset_mask(const Tensor& resets, int64_t batch, int64_t len, DType dtype, const char* who);

// s with the streams where lanes [B] is nonzero replaced by the same streams of fresh() (called
// only when some stream resets; differentiable through s). Every tensor must be per stream (dim 0 =
// B) with the same shape in both states, unless every stream resets, when fresh is returned whole;
// otherwise an error names the tensor (a KV cache that grows cannot be reset for part of a batch).
State reset_streams(const State& s, const std::function<State()>& fresh, const Tensor& lanes,
                    const char* who);

// The generic path of Mixer::forward_with_resets: forward over the pieces between the token
// positions where some stream resets, carrying the state and resetting the streams at each cut.
Tensor forward_in_reset_pieces(Mixer& mixer, const Tensor& x, State* state, const Tensor& mask);

}  // namespace rill
