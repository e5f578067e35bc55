// The choice of group (backends.h).
#include "rill/dist/backends.h"

#include "rill/core/error.h"
#include "rill/dist/launcher.h"
#include "rill/dist/mpi_communicator.h"
#include "rill/dist/nccl_communicator.h"

namespace rill::dist {

std::unique_ptr<Communicator> make_communicator(const CommOptions& o) {
  RILL_CHECK(o.kind == "auto" || o.kind == "local" || o.kind == "mpi" || o.kind == "nccl",
             "[train] --comm must be auto, local, mpi or nccl, got \"{}\"", o.kind);
  RILL_CHECK(o.timeout_s >= 0, "[train] --dist-timeout must be 0 (no limit) or positive, got {}",
             o.timeout_s);
  const LaunchInfo launch = detect_launch();
  if (o.kind == "local" || (o.kind == "auto" && !launch.launched)) {
    RILL_CHECK(!launch.launched || launch.size <= 1,
               "[train] --comm local, but {} started this process as rank {} of {}: every rank "
               "would train alone and overwrite the others' files",
               launch.launcher, launch.rank, launch.size);
    return std::make_unique<LocalCommunicator>();
  }
  if (o.kind == "auto" && !mpi_built())
    fail(
        "[train] {} started this process as rank {} of {}, but this rill was built without MPI: "
        "every rank would train alone and overwrite the others' files; install Open MPI "
        "(libopenmpi-dev openmpi-bin; scripts/setup.sh does) and build again",
        launch.launcher, launch.rank, launch.size);
  if (o.kind == "nccl") {
    std::unique_ptr<Communicator> boot;
    if (launch.launched)
      boot = make_mpi_communicator(o.timeout_s);
    else
      boot = std::make_unique<LocalCommunicator>();
    return make_nccl_communicator(std::move(boot), launch.local_rank, o.timeout_s);
  }
  return make_mpi_communicator(o.timeout_s);
}

}  // namespace rill::dist
