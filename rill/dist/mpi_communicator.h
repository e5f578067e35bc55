// The MPI group (Open MPI or MPICH, from Debian's libopenmpi-dev): the ranks of the job that
// mpirun started, on one machine or many. Built when CMake finds MPI; otherwise
// make_mpi_communicator fails with a message that says how to get it. No MPI header is included
// here, so the trainer and the tests that do not need MPI compile without it.
#pragma once
#include <memory>

#include "rill/dist/communicator.h"

namespace rill::dist {

// True when this rill was built with MPI.
bool mpi_built();

// Initialises MPI (once per process) and returns the group of every rank of the job (one rank
// when the process was not started by a launcher). Calls that fail raise rill::Error naming the
// call, the rank and the step; a rank that waits in one call longer than timeout_s (0: forever)
// ends itself so that mpirun ends the job (fault.h). MPI is finalised when the group goes, and
// cannot be initialised again in the same process.
std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s);

}  // namespace rill::dist
