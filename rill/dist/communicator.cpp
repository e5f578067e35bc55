// The one-process group: every collective of a group of one is a copy (or nothing).
#include "rill/dist/communicator.h"

#include <cstdlib>
#include <cstring>

#include "rill/core/error.h"

namespace rill::dist {

int64_t element_bytes(DType dtype, const char* op) {
  RILL_CHECK(dtype == DType::f32 || dtype == DType::f64,
             "[dist] {} communicates f32 or f64 buffers, not {}", op, dtype_name(dtype));
  return dtype == DType::f32 ? 4 : 8;
}

void LocalCommunicator::alltoall(const void* send, void* recv, int64_t count, DType dtype) {
  if (send != recv) std::memcpy(recv, send, size_t(count * element_bytes(dtype, "alltoall")));
}

void LocalCommunicator::allgather(const void* send, void* recv, int64_t count, DType dtype) {
  if (send != recv) std::memcpy(recv, send, size_t(count * element_bytes(dtype, "allgather")));
}

void LocalCommunicator::broadcast(void* data, int64_t bytes, int root) {
  RILL_CHECK(root == 0, "[dist] broadcast from rank {} in a group of one", root);
}

std::vector<std::string> LocalCommunicator::gather_bytes(const std::string& mine, int root) {
  RILL_CHECK(root == 0, "[dist] gather to rank {} in a group of one", root);
  return {mine};
}

void LocalCommunicator::abort(int code) { std::exit(code); }

Communicator& local_communicator() {
  static LocalCommunicator local;
  return local;
}

}  // namespace rill::dist
