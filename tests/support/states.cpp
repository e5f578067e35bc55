// expect_states_close: two states compared tensor by tensor.
#include "tests/support/states.h"

#include "tests/support/testing.h"

namespace rill::testing {

void expect_states_close(const State& expected, const State& actual, const std::string& what) {
  ASSERT_EQ(expected.tensors().size(), actual.tensors().size()) << what;
  for (const auto& [name, t] : expected.tensors()) {
    const Tensor u = actual.get(name);
    if (is_floating(t.dtype())) {
      EXPECT_TRUE(all_close(u, t)) << what << ": state " << name;
    } else {
      EXPECT_TRUE(bitwise_equal(t, u)) << what << ": state " << name;
    }
  }
}

}  // namespace rill::testing
