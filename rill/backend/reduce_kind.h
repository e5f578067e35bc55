// The reductions the backends implement (mean is sum scaled by the op layer).
#pragma once

namespace rill {

enum class ReduceOp { sum, max, logsumexp };

}  // namespace rill
