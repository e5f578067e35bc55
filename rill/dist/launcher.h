// Whether this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI), read
// from the environment the launcher sets, without initialising MPI: `rill train` under
// `mpirun -np N` becomes a data-parallel run by itself, and a rill built without MPI refuses to
// run as N independent copies that would overwrite each other's files.
#pragma once
#include <string>

namespace rill::dist {

struct LaunchInfo {
  bool launched = false;  // a launcher's variables are present
  int rank = 0, size = 1;
  int local_rank = 0;    // rank among the processes on this machine (picks the GPU)
  std::string launcher;  // "Open MPI", "PMI" or "PMIx"; empty when not launched
};

LaunchInfo detect_launch();

}  // namespace rill::dist
