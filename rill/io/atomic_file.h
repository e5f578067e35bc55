// Writing files so that a crash at any moment leaves either the old file or the new one, never a
// torn mix: write a temporary beside the target, fsync it, rename over the target, fsync the dir.
#pragma once
#include <functional>
#include <string>

namespace rill {

// Calls write(fd) to fill the temporary, then commits it atomically to `path`. On any error the
// temporary is removed, the target is untouched, and rill::Error names the path.
void write_file_atomically(const std::string& path, const std::function<void(int fd)>& write);

// Writes all of [data, data + size) to fd, retrying short writes; errors name `path`.
void write_all(int fd, const void* data, size_t size, const std::string& path);

}  // namespace rill
