// The kernel arguments of the first-order linear scan h_t = a_t ⊙ h_{t-1} + b_t, shared by the ref
// and cpu backends. The op has already broadcast a to b's shape and flattened the state's dims, so
// every kernel sees N sequences of T steps of D independent lanes, all contiguous.
//
// Shapes: N batch, T steps, D lanes (the flattened state).
#pragma once
#include "rill/core/tensor.h"

namespace rill {

struct LinearScanArgs {
  Tensor a;   // [N,T,D] the decays (a reset is a_t = 0)
  Tensor b;   // [N,T,D] the inputs
  Tensor h0;  // [N,D] the state before step 0; undefined = zeros
};

// What the backward writes from the forward's args, its output h [N,T,D] and dL/dh g [N,T,D]:
// da [N,T,D] and db [N,T,D] always, dh0 [N,D] when defined (undefined = not wanted).
struct LinearScanGrads {
  Tensor da, db, dh0;
};

}  // namespace rill
