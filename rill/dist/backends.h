// Choosing the group a run trains in, from the command line's --comm and the launcher's
// environment (launcher.h):
//   auto   MPI when an MPI launcher started this process, else the one-process group
//   local  the one-process group (refused under a launcher of more than one rank)
//   mpi    MPI (one rank when no launcher started the process)
//   nccl   NCCL for the gradient collectives, bootstrapped over MPI under a launcher, or a
//          one-rank NCCL group on this machine's first GPU otherwise
// A rill built without MPI (or NCCL) refuses what it lacks, and refuses to run under mpirun,
// where every rank would train alone and overwrite the others' files.
#pragma once
#include <memory>
#include <string>

#include "rill/dist/communicator.h"

namespace rill::dist {

struct CommOptions {
  std::string kind = "auto";
  double timeout_s = 900;  // the longest wait in one collective (fault.h); 0: no limit
};

std::unique_ptr<Communicator> make_communicator(const CommOptions& options);

}  // namespace rill::dist
