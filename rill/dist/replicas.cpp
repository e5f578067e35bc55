// Rank 0's weights and files on every rank (replicas.h).
#include "rill/dist/replicas.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "rill/core/error.h"

namespace rill::dist {

namespace fs = std::filesystem;

namespace {

// Broadcasts in pieces well under 2^31 bytes (MPI counts are int).
void broadcast_large(Communicator& comm, void* data, int64_t bytes) {
  constexpr int64_t kPiece = int64_t(1) << 30;
  char* p = static_cast<char*>(data);
  for (int64_t off = 0; off < bytes; off += kPiece)
    comm.broadcast(p + off, std::min(kPiece, bytes - off), 0);
}

}  // namespace

void broadcast_weights(Communicator& comm, nn::Module& module) {
  if (comm.size() == 1) return;
  for (auto& [name, t] : module.state_dict()) {
    RILL_CHECK(t.is_contiguous(), "[dist] weight \"{}\" is not contiguous", name);
    broadcast_large(comm, t.data_ptr(), int64_t(t.nbytes()));
  }
}

bool same_on_every_rank(Communicator& comm, const std::string& value) {
  if (comm.size() == 1) return true;
  const std::vector<std::string> all = comm.gather_bytes(value, 0);
  for (const std::string& v : all)
    if (v != all[0]) return false;
  return true;
}

SharedFile::SharedFile(Communicator& comm, const std::string& path) : path_(path) {
  if (comm.size() == 1) return;
  std::string bytes;
  int64_t size = 0;
  if (comm.rank() == 0) {
    std::ifstream in(path, std::ios::binary);
    RILL_CHECK(in.good(), "[train] cannot read {}", path);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
    size = int64_t(bytes.size());
  }
  comm.broadcast(&size, sizeof size, 0);
  bytes.resize(size_t(size));
  broadcast_large(comm, bytes.data(), size);
  if (comm.rank() == 0) return;
  path_ = (fs::temp_directory_path() /
           ("rill-rank" + std::to_string(comm.rank()) + "-" + std::to_string(::getpid()) + "-" +
            fs::path(path).filename().string()))
              .string();
  std::ofstream out(path_, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  RILL_CHECK(out.good(), "[train] rank {}: cannot write the copy of {} to {}", comm.rank(), path,
             path_);
  temporary_ = true;
}

SharedFile::~SharedFile() {
  if (!temporary_) return;
  std::error_code ec;
  fs::remove(path_, ec);
}

}  // namespace rill::dist
