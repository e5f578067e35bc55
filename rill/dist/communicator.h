// Communicator: what data-parallel training needs of a group of processes (ranks), and the
// one-process group. The trainer always talks to one of these, so a run on one process and a
// run on many take the same code path; the MPI and NCCL groups (mpi_communicator.h,
// nccl_communicator.h) implement the same calls.
//
// Every call is collective: every rank of the group makes it, in the same order, with the same
// sizes. Buffers are host memory; `count` is in elements of `dtype` (f32 or f64).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rill/core/dtype.h"

namespace rill::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "local", "mpi" or "nccl": for messages, and so that a one-rank NCCL group still runs its
  // calls (only the one-process group may be skipped).
  virtual std::string name() const = 0;

  // send [size, count] -> recv [size, count]: recv row r is the row `rank()` of rank r's send.
  virtual void alltoall(const void* send, void* recv, int64_t count, DType dtype) = 0;
  // send [count] -> recv [size, count]: every rank's send, in rank order.
  virtual void allgather(const void* send, void* recv, int64_t count, DType dtype) = 0;
  // In place: data = the sum over ranks, in the library's own order. Fast, but its summation
  // order depends on the algorithm and the rank count, so it is not exact across rank counts
  // (exact_allreduce.h is).
  virtual void allreduce_sum(void* data, int64_t count, DType dtype) = 0;
  // root's bytes into every rank's data.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank's bytes, in rank order, on root; empty on the other ranks.
  virtual std::vector<std::string> gather_bytes(const std::string& mine, int root) = 0;
  // Waits for every rank without spinning: one rank may validate or write a checkpoint for
  // minutes while the others wait, and a spinning wait would take their cores from it.
  virtual void barrier() = 0;
  // Ends every rank of the job with this exit code (the caller has printed why). Never returns.
  [[noreturn]] virtual void abort(int code) = 0;
  // The training step in progress, for the messages of a rank that is stopped or times out.
  virtual void note_step(int64_t step) {}
};

// The group of one process: collectives are copies; abort exits.
class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "local"; }
  void alltoall(const void* send, void* recv, int64_t count, DType dtype) override;
  void allgather(const void* send, void* recv, int64_t count, DType dtype) override;
  void allreduce_sum(void* data, int64_t count, DType dtype) override {}
  void broadcast(void* data, int64_t bytes, int root) override;
  std::vector<std::string> gather_bytes(const std::string& mine, int root) override;
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

// The process-wide one-process group (what train() uses when given none).
Communicator& local_communicator();

// Bytes per element of a communicated dtype; refuses anything but f32 and f64.
int64_t element_bytes(DType dtype, const char* op);

}  // namespace rill::dist
