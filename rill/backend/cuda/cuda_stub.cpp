// Built when RILL_CUDA is off: the CUDA backend exists only as a clear error.
#include "rill/backend/cuda/cuda.h"

#include "rill/core/error.h"

namespace rill::cuda {

bool available() { return false; }

void require() {
  fail("[cuda] rill was built without CUDA; configure with -DRILL_CUDA=ON (needs nvcc and cuBLAS)");
}

}  // namespace rill::cuda
