// Built when RILL_CUDA is off: the NCCL group exists only as a clear error.
#include "rill/core/error.h"
#include "rill/dist/nccl_communicator.h"

namespace rill::dist {

bool nccl_built() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> bootstrap,
                                                     int local_rank, double timeout_s) {
  fail(
      "[dist] this rill was built without CUDA, so without NCCL: configure with -DRILL_CUDA=ON "
      "(needs nvcc and NCCL) and build again");
}

}  // namespace rill::dist
