// The NCCL group: the gradient collectives (alltoall, allgather, all-reduce) run through NCCL on
// each rank's GPU, over NVLink, PCIe or the network as NCCL finds them; the small host-side calls
// (broadcast, gather, barrier) go through the bootstrap group, which also carries NCCL's unique
// id from rank 0 to the others: the MPI group under mpirun, or the one-process group for a
// single GPU (a one-rank NCCL communicator, so one GPU runs the same calls as many).
//
// The trainer's tensors live in host memory today, so each call copies its buffer to the GPU
// and back; once the model trains on the GPU the same calls can take device buffers directly.
// Built with -DRILL_CUDA=ON (nccl.h and libnccl from the CUDA toolkit); otherwise
// make_nccl_communicator fails with a message that says so. No CUDA header is included here.
#pragma once
#include <memory>

#include "rill/dist/communicator.h"

namespace rill::dist {

bool nccl_built();

// The NCCL group over the bootstrap's ranks, on GPU local_rank % (devices on this machine).
// A call that fails, or whose GPU work has not finished after timeout_s (0: no limit), aborts
// the NCCL communicator and raises rill::Error naming the call and the rank.
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> bootstrap,
                                                     int local_rank, double timeout_s);

}  // namespace rill::dist
