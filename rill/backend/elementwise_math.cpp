// Names of the unary and binary elementwise ops, for error messages and benchmarks.

#include "rill/backend/elementwise_math.h"

namespace rill {

const char* unary_name(UnaryOp op) {
  static const char* names[] = {"neg",        "exp",        "log",      "sqrt",      "rsqrt",
                                "tanh",       "sigmoid",    "relu",     "gelu_tanh", "gelu_erf",
                                "silu",       "elu",        "softplus", "clamp",     "pow",
                                "add_scalar", "mul_scalar", "abs"};
  return names[static_cast<int>(op)];
}

const char* binary_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "eq", "lt", "gt"};
  return names[static_cast<int>(op)];
}

}  // namespace rill
