// Test helpers for files: a temporary folder per test that removes itself, and whole-file reads
// and writes.
#pragma once
#include <string>

namespace rill::testing {

// A fresh folder under the system temp dir, named after the running test; removed on exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& str() const { return path_; }
  std::string operator/(const std::string& p) const { return path_ + "/" + p; }

 private:
  std::string path_;
};

std::string read_all(const std::string& path);                      // "" when unreadable
void write_raw(const std::string& path, const std::string& bytes);  // replaces the file

}  // namespace rill::testing
