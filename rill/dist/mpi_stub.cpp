// Built when CMake finds no MPI: the MPI group exists only as a clear error.
#include "rill/core/error.h"
#include "rill/dist/mpi_communicator.h"

namespace rill::dist {

bool mpi_built() { return false; }

std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s) {
  fail(
      "[dist] this rill was built without MPI: install Open MPI (libopenmpi-dev openmpi-bin; "
      "scripts/setup.sh does) and build again");
}

}  // namespace rill::dist
