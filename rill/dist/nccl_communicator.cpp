// The NCCL group (nccl_communicator.h): host buffers staged through device buffers that grow to
// the largest call and are kept (cudaMalloc is slow and synchronising), one stream, and waits
// that poll NCCL's asynchronous error so that a dead peer ends in an error, not a hang.
#include "rill/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "rill/core/error.h"

namespace rill::dist {

bool nccl_built() { return true; }

namespace {

void cuda_check(cudaError_t rc, const char* call) {
  if (rc != cudaSuccess) fail("[dist] {} failed: {}", call, cudaGetErrorString(rc));
}

ncclDataType_t nccl_type(DType dtype, const char* op) {
  element_bytes(dtype, op);  // refuses the rest
  return dtype == DType::f32 ? ncclFloat32 : ncclFloat64;
}

// A device buffer that keeps its largest size.
struct Staging {
  void* ptr = nullptr;
  size_t bytes = 0;
  void* reserve(size_t want) {
    if (want > bytes) {
      if (ptr) cudaFree(ptr);
      ptr = nullptr;
      cuda_check(cudaMalloc(&ptr, want), "cudaMalloc (NCCL staging)");
      bytes = want;
    }
    return ptr;
  }
  ~Staging() {
    if (ptr) cudaFree(ptr);
  }
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::unique_ptr<Communicator> bootstrap, int local_rank, double timeout_s)
      : boot_(std::move(bootstrap)), timeout_s_(timeout_s) {
    int devices = 0;
    cuda_check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    RILL_CHECK(devices > 0, "[dist] rank {}: NCCL needs a GPU and this machine reports none",
               boot_->rank());
    device_ = local_rank % devices;
    cuda_check(cudaSetDevice(device_), "cudaSetDevice");
    ncclUniqueId id{};
    if (boot_->rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    boot_->broadcast(&id, sizeof id, 0);
    check(ncclCommInitRank(&comm_, boot_->size(), id, boot_->rank()), "ncclCommInitRank");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }

  ~NcclCommunicator() override {
    if (stream_) cudaStreamSynchronize(stream_);
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return boot_->rank(); }
  int size() const override { return boot_->size(); }
  std::string name() const override { return "nccl"; }
  void note_step(int64_t step) override {
    step_ = step;
    boot_->note_step(step);
  }

  void alltoall(const void* send, void* recv, int64_t count, DType dtype) override {
    const ncclDataType_t t = nccl_type(dtype, "alltoall");
    const size_t row = size_t(count * element_bytes(dtype, "alltoall"));
    const size_t bytes = row * size_t(size());
    char* s = static_cast<char*>(send_.reserve(bytes));
    char* r = static_cast<char*>(recv_.reserve(bytes));
    cuda_check(cudaMemcpyAsync(s, send, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    check(ncclGroupStart(), "ncclGroupStart");
    for (int peer = 0; peer < size(); ++peer) {
      check(ncclSend(s + peer * row, size_t(count), t, peer, comm_, stream_), "ncclSend");
      check(ncclRecv(r + peer * row, size_t(count), t, peer, comm_, stream_), "ncclRecv");
    }
    check(ncclGroupEnd(), "ncclGroupEnd");
    cuda_check(cudaMemcpyAsync(recv, r, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    wait("alltoall (ncclSend/ncclRecv)");
  }

  void allgather(const void* send, void* recv, int64_t count, DType dtype) override {
    const ncclDataType_t t = nccl_type(dtype, "allgather");
    const size_t row = size_t(count * element_bytes(dtype, "allgather"));
    char* s = static_cast<char*>(send_.reserve(row));
    char* r = static_cast<char*>(recv_.reserve(row * size_t(size())));
    cuda_check(cudaMemcpyAsync(s, send, row, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    check(ncclAllGather(s, r, size_t(count), t, comm_, stream_), "ncclAllGather");
    cuda_check(cudaMemcpyAsync(recv, r, row * size_t(size()), cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpyAsync");
    wait("ncclAllGather");
  }

  void allreduce_sum(void* data, int64_t count, DType dtype) override {
    const ncclDataType_t t = nccl_type(dtype, "allreduce");
    const size_t bytes = size_t(count * element_bytes(dtype, "allreduce"));
    void* d = send_.reserve(bytes);
    cuda_check(cudaMemcpyAsync(d, data, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    check(ncclAllReduce(d, d, size_t(count), t, ncclSum, comm_, stream_), "ncclAllReduce");
    cuda_check(cudaMemcpyAsync(data, d, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    wait("ncclAllReduce");
  }

  // Host-side and small: the bootstrap group carries them.
  void broadcast(void* data, int64_t bytes, int root) override {
    boot_->broadcast(data, bytes, root);
  }
  std::vector<std::string> gather_bytes(const std::string& mine, int root) override {
    return boot_->gather_bytes(mine, root);
  }
  void barrier() override { boot_->barrier(); }

  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    boot_->abort(code);
    std::_Exit(code);  // not reached: the bootstrap's abort ends the process
  }

 private:
  void check(ncclResult_t rc, const char* call) {
    if (rc == ncclSuccess || rc == ncclInProgress) return;
    fail("[dist] rank {} of {}: {} failed after training step {}: {}", rank(), size(), call, step_,
         ncclGetErrorString(rc));
  }

  // Polls the stream and NCCL's asynchronous error (a peer that died shows there), with the
  // timeout; on either, aborts the communicator so that nothing stays blocked on the GPU.
  void wait(const char* op) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t q = cudaStreamQuery(stream_);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) cuda_check(q, op);
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (async != ncclSuccess && async != ncclInProgress) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        fail(
            "[dist] rank {} of {}: {} failed after training step {}: {} (did another rank "
            "fail?)",
            rank(), size(), op, step_, ncclGetErrorString(async));
      }
      if (timeout_s_ > 0 && waited > timeout_s_) {
        ncclCommAbort(comm_);
        comm_ = nullptr;
        fail(
            "[dist] rank {} of {}: waited {:.0f} s in {} after training step {}: another rank is "
            "stuck or the network is down (the limit is --dist-timeout)",
            rank(), size(), waited, op, step_);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::unique_ptr<Communicator> boot_;
  double timeout_s_;
  int device_ = 0;
  int64_t step_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  Staging send_, recv_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> bootstrap,
                                                     int local_rank, double timeout_s) {
  RILL_CHECK(bootstrap != nullptr, "[dist] NCCL needs a bootstrap group");
  return std::make_unique<NcclCommunicator>(std::move(bootstrap), local_rank, timeout_s);
}

}  // namespace rill::dist
