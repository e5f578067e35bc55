// The MPI group (mpi_communicator.h). Its own duplicate of MPI_COMM_WORLD returns errors rather
// than aborting inside MPI, so a failed call becomes a rill::Error with the rank and the step;
// the caller prints it and calls abort(), which ends every rank.
#include "rill/dist/mpi_communicator.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <thread>

#include "rill/core/error.h"
#include "rill/dist/fault.h"

namespace rill::dist {

bool mpi_built() { return true; }

namespace {

MPI_Datatype mpi_type(DType dtype, const char* op) {
  element_bytes(dtype, op);  // refuses the rest
  return dtype == DType::f32 ? MPI_FLOAT : MPI_DOUBLE;
}

int int_count(int64_t count, const char* op) {
  RILL_CHECK(count >= 0 && count <= INT_MAX, "[dist] {} of {} elements: more than MPI's int", op,
             count);
  return int(count);
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) {
    int initialised = 0, finalised = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalised);
    RILL_CHECK(!finalised, "[dist] MPI was already finalised in this process");
    if (!initialised) {
      int provided = 0;
      // Only the main thread calls MPI (the watchdog never does).
      RILL_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS,
                 "[dist] MPI_Init_thread failed");
      owns_mpi_ = true;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    guard_ = std::make_unique<FaultGuard>(rank_, size_, timeout_s);
  }

  ~MpiCommunicator() override {
    guard_.reset();
    MPI_Comm_free(&comm_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  void note_step(int64_t step) override {
    step_ = step;
    guard_->note_step(step);
  }

  void alltoall(const void* send, void* recv, int64_t count, DType dtype) override {
    FaultGuard::Waiting w(guard_.get(), "MPI_Alltoall");
    const int n = int_count(count, "alltoall");
    const MPI_Datatype t = mpi_type(dtype, "alltoall");
    check(MPI_Alltoall(send, n, t, recv, n, t, comm_), "MPI_Alltoall");
  }

  void allgather(const void* send, void* recv, int64_t count, DType dtype) override {
    FaultGuard::Waiting w(guard_.get(), "MPI_Allgather");
    const int n = int_count(count, "allgather");
    const MPI_Datatype t = mpi_type(dtype, "allgather");
    check(MPI_Allgather(send, n, t, recv, n, t, comm_), "MPI_Allgather");
  }

  void allreduce_sum(void* data, int64_t count, DType dtype) override {
    FaultGuard::Waiting w(guard_.get(), "MPI_Allreduce");
    check(MPI_Allreduce(MPI_IN_PLACE, data, int_count(count, "allreduce"),
                        mpi_type(dtype, "allreduce"), MPI_SUM, comm_),
          "MPI_Allreduce");
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    FaultGuard::Waiting w(guard_.get(), "MPI_Bcast");
    check(MPI_Bcast(data, int_count(bytes, "broadcast"), MPI_BYTE, root, comm_), "MPI_Bcast");
  }

  std::vector<std::string> gather_bytes(const std::string& mine, int root) override {
    FaultGuard::Waiting w(guard_.get(), "MPI_Gatherv");
    const int n = int_count(int64_t(mine.size()), "gather");
    std::vector<int> sizes(size_t(size_), 0), offsets(size_t(size_), 0);
    check(MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, root, comm_), "MPI_Gather");
    std::string all;
    if (rank_ == root) {
      int64_t total = 0;
      for (int r = 0; r < size_; ++r) offsets[size_t(r)] = int(total), total += sizes[size_t(r)];
      int_count(total, "gather");
      all.resize(size_t(total));
    }
    check(MPI_Gatherv(mine.data(), n, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE,
                      root, comm_),
          "MPI_Gatherv");
    std::vector<std::string> out;
    if (rank_ == root)
      for (int r = 0; r < size_; ++r)
        out.push_back(all.substr(size_t(offsets[size_t(r)]), size_t(sizes[size_t(r)])));
    return out;
  }

  void barrier() override {
    FaultGuard::Waiting w(guard_.get(), "MPI_Ibarrier");
    MPI_Request request;
    check(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
    // Test, then sleep: the wait costs at most a millisecond of latency and no core.
    for (int done = 0;;) {
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test (barrier)");
      if (done) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  void check(int rc, const char* call) const {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    fail("[dist] rank {} of {}: {} failed after training step {}: {} (did another rank fail?)",
         rank_, size_, call, step_, std::string(text, size_t(len)));
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  int64_t step_ = 0;
  bool owns_mpi_ = false;
  std::unique_ptr<FaultGuard> guard_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s) {
  return std::make_unique<MpiCommunicator>(timeout_s);
}

}  // namespace rill::dist
