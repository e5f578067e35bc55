// The sessions of `rill serve`, durable: each lives in memory while in use and as one file,
// <dir>/<id>.safetensors (the stream and its token count, written atomically), from its creation
// on. A request takes a session for itself (acquire), and on release its stream is written
// before the client is told the request completed, so a server killed at any moment restarts
// with every session as of its last completed request. Idle sessions beyond the memory cap are
// dropped from memory (their file is current) and read back when used.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rill/train/generate.h"

namespace rill::serve {

struct Session {
  std::string id;
  Stream stream;       // valid while resident
  int64_t tokens = 0;  // tokens the session has read and generated
  int64_t state_bytes = 0;
  bool resident = false;  // the stream is in memory
  bool busy = false;      // a request holds it
  std::chrono::steady_clock::time_point last_used;
};

struct SessionSummary {
  std::string id;
  int64_t tokens = 0, state_bytes = 0;
  bool resident = false, busy = false;
};

struct SessionStoreOptions {
  std::string dir;              // where the sessions' files live
  std::string weights_sha256;   // of the served model: a file of another is refused
  int64_t max_sessions = 1024;  // more is a 429
  int64_t memory_cap_bytes = int64_t(512) << 20;  // resident states beyond it go to disk
};

class SessionStore {
 public:
  // Opens (creating) the folder and lists the sessions saved there; stray temporaries of writes
  // cut short are removed. A file that cannot be read is reported and skipped, never deleted.
  explicit SessionStore(SessionStoreOptions options);

  // A new session holding `stream` (tokens read so far), saved before this returns. The id is
  // fresh unless given (an upload): an existing session of that id is replaced.
  std::string create(Stream stream, int64_t tokens, const std::string& id = "");
  // The session for this request alone: 404 unknown, 409 in use. Read back from disk if evicted.
  std::shared_ptr<Session> acquire(const std::string& id);
  // Ends a request, then lets others use the session and applies the memory cap. `saved`: the
  // stream is written first (the request completed); `unchanged`: nothing to write; `discarded`:
  // the request failed part way, so the stream in memory is dropped and the next request reads
  // the file (the session as of its last completed request).
  enum class Outcome { saved, unchanged, discarded };
  void release(const std::shared_ptr<Session>& s, Outcome outcome);
  // A copy of an idle session under a new id (saved), or 409 when in use.
  std::string fork(const std::string& id);
  void remove(const std::string& id);  // 404 unknown, 409 in use; deletes its file
  std::vector<SessionSummary> list() const;
  SessionSummary summary(const std::string& id) const;  // 404 unknown
  int64_t resident_bytes() const;
  int64_t size() const;

  // The file a session lives in, and the metadata its stream is saved with.
  std::string path_of(const std::string& id) const;
  std::map<std::string, std::string> file_metadata(const Session& s) const;
  // Reads a stream file (an upload or a saved session), refusing one of another model (400).
  Stream read_stream(const std::string& path, int64_t* tokens) const;

 private:
  void save(const Session& s) const;
  void enforce_cap();  // with mu_ held
  std::string fresh_id();

  SessionStoreOptions opt_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  uint64_t id_counter_ = 0;
};

}  // namespace rill::serve
