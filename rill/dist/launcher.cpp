// Reading the MPI launcher's environment (launcher.h).
#include "rill/dist/launcher.h"

#include <cstdlib>

namespace rill::dist {

namespace {

bool read_int(const char* name, int& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0) return false;
  out = int(x);
  return true;
}

}  // namespace

LaunchInfo detect_launch() {
  LaunchInfo l;
  // Open MPI's mpirun, then MPICH's Hydra (PMI), then any PMIx launcher.
  if (read_int("OMPI_COMM_WORLD_SIZE", l.size) && read_int("OMPI_COMM_WORLD_RANK", l.rank)) {
    l.launched = true, l.launcher = "Open MPI";
    read_int("OMPI_COMM_WORLD_LOCAL_RANK", l.local_rank);
  } else if (read_int("PMI_SIZE", l.size) && read_int("PMI_RANK", l.rank)) {
    l.launched = true, l.launcher = "PMI";
    read_int("MPI_LOCALRANKID", l.local_rank);
  } else if (read_int("PMIX_RANK", l.rank)) {
    l.launched = true, l.launcher = "PMIx", l.size = 0;  // the size is known once MPI starts
    read_int("PMIX_LOCAL_RANK", l.local_rank);
  }
  return l;
}

}  // namespace rill::dist
