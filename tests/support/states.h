// Comparing two recurrent states (rill/mixers/state.h) tensor by tensor, for the tests of the
// forms that must leave the same state (whole sequence, pieces, steps).
#pragma once
#include <string>

#include "rill/mixers/state.h"

namespace rill::testing {

// The same tensor names; floating tensors of `actual` within the tolerance of `expected`'s
// dtype, integer ones (clocks, positions) bitwise equal.
void expect_states_close(const State& expected, const State& actual, const std::string& what);

}  // namespace rill::testing
