// Durable sessions (session_store.h). Files are written with Stream::save (atomic: a crash
// leaves the old file or the new one); a session's file exists from its creation until it is
// deleted, so evicting an idle session only drops its memory.
#include "rill/serve/session_store.h"

#include <algorithm>
#include <filesystem>
#include <random>

#include "rill/core/error.h"
#include "rill/serve/requests.h"

namespace rill::serve {

namespace fs = std::filesystem;

namespace {
constexpr const char* kSuffix = ".safetensors";
}  // namespace

SessionStore::SessionStore(SessionStoreOptions options) : opt_(std::move(options)) {
  RILL_CHECK(!opt_.dir.empty(), "[serve] the sessions folder is not set");
  std::error_code ec;
  fs::create_directories(opt_.dir, ec);
  RILL_CHECK(!ec && fs::is_directory(opt_.dir), "[serve] cannot use {} as the sessions folder: {}",
             opt_.dir, ec ? ec.message() : "not a folder");
  for (const auto& e : fs::directory_iterator(opt_.dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) {  // a write cut short (kill -9): never committed
      fs::remove(e.path(), ec);
      continue;
    }
    if (!e.is_regular_file() || !name.ends_with(kSuffix)) continue;
    const std::string id = name.substr(0, name.size() - std::string(kSuffix).size());
    if (!is_session_id(id)) continue;
    auto s = std::make_shared<Session>();
    s->id = id;
    try {
      s->stream = read_stream(e.path().string(), &s->tokens);
    } catch (const std::exception& err) {
      fmt::print(stderr, "serve: skipping session file {}: {}\n", e.path().string(), err.what());
      continue;
    }
    s->state_bytes = int64_t(s->stream.state.bytes());
    s->resident = true;
    s->last_used = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    sessions_[id] = s;
    enforce_cap();  // as they are read, so that a large folder never sits in memory whole
  }
}

std::string SessionStore::path_of(const std::string& id) const {
  return (fs::path(opt_.dir) / (id + kSuffix)).string();
}

std::map<std::string, std::string> SessionStore::file_metadata(const Session& s) const {
  return {{"checkpoint_weights_sha256", opt_.weights_sha256},
          {"session.tokens", std::to_string(s.tokens)}};
}

Stream SessionStore::read_stream(const std::string& path, int64_t* tokens) const {
  std::map<std::string, std::string> meta;
  Stream s;
  try {
    s = Stream::load(path, &meta);
  } catch (const Error& e) {
    throw ApiError(400, fmt::format("not a stream state file: {}", e.what()));
  }
  auto it = meta.find("checkpoint_weights_sha256");
  if (it == meta.end() || it->second != opt_.weights_sha256)
    throw ApiError(400,
                   "the state was saved from another model than the one served (its weights "
                   "differ): a state only continues the model that made it");
  if (tokens) {
    auto t = meta.find("session.tokens");
    *tokens = 0;
    if (t != meta.end()) try {
        *tokens = std::stoll(t->second);
      } catch (const std::exception&) {
        throw ApiError(400, "the state's session.tokens is not a number");
      }
  }
  return s;
}

void SessionStore::save(const Session& s) const { s.stream.save(path_of(s.id), file_metadata(s)); }

std::string SessionStore::fresh_id() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  for (;;) {
    std::string id = fmt::format("s{:012x}", rng() & 0xffffffffffffull);
    if (!sessions_.count(id)) return id;
  }
}

std::string SessionStore::create(Stream stream, int64_t tokens, const std::string& id) {
  auto s = std::make_shared<Session>();
  s->stream = std::move(stream);
  s->tokens = tokens;
  s->state_bytes = int64_t(s->stream.state.bytes());
  s->resident = true;
  s->last_used = std::chrono::steady_clock::now();
  std::shared_ptr<Session> replaced;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto old = id.empty() ? sessions_.end() : sessions_.find(id);
    if (old != sessions_.end()) replaced = old->second;
    if (old != sessions_.end() && old->second->busy)
      throw ApiError(409, fmt::format("session {} is in use by another request", id));
    if (old == sessions_.end() && int64_t(sessions_.size()) >= opt_.max_sessions)
      throw ApiError(429, fmt::format("too many sessions: this server keeps at most {}; delete "
                                      "some first",
                                      opt_.max_sessions));
    s->id = id.empty() ? fresh_id() : id;
    s->busy = true;  // nobody uses it until it is on disk
    sessions_[s->id] = s;
  }
  try {
    save(*s);
  } catch (...) {  // the old file, if any, is untouched (atomic write): so is its session
    std::lock_guard<std::mutex> lock(mu_);
    if (replaced)
      sessions_[s->id] = replaced;
    else
      sessions_.erase(s->id);
    throw;
  }
  release(s, Outcome::unchanged);
  return s->id;
}

std::shared_ptr<Session> SessionStore::acquire(const std::string& id) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) throw ApiError(404, fmt::format("no session {}", id));
    s = it->second;
    if (s->busy) throw ApiError(409, fmt::format("session {} is in use by another request", id));
    s->busy = true;
  }
  if (!s->resident) {  // evicted: its file is current
    try {
      s->stream = read_stream(path_of(id), nullptr);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      s->busy = false;
      throw;
    }
    std::lock_guard<std::mutex> lock(mu_);
    s->resident = true;
  }
  return s;
}

void SessionStore::release(const std::shared_ptr<Session>& s, Outcome outcome) {
  std::exception_ptr failure;
  if (outcome == Outcome::saved) {
    s->state_bytes = int64_t(s->stream.state.bytes());
    try {
      save(*s);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (outcome == Outcome::discarded || failure) {  // the file holds the last completed request
    s->stream = Stream();
    s->resident = false;
  }
  s->busy = false;
  s->last_used = std::chrono::steady_clock::now();
  enforce_cap();
  if (failure) std::rethrow_exception(failure);
}

std::string SessionStore::fork(const std::string& id) {
  auto src = acquire(id);
  Stream copy = src->stream;
  copy.state = src->stream.state.clone();
  const int64_t tokens = src->tokens;
  release(src, Outcome::unchanged);
  return create(std::move(copy), tokens);
}

void SessionStore::remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) throw ApiError(404, fmt::format("no session {}", id));
  if (it->second->busy)
    throw ApiError(409, fmt::format("session {} is in use by another request", id));
  std::error_code ec;
  fs::remove(path_of(id), ec);
  RILL_CHECK(!ec, "[serve] cannot delete {}: {}", path_of(id), ec.message());
  sessions_.erase(it);
}

namespace {
SessionSummary summary_of(const Session& s) {
  return {s.id, s.tokens, s.state_bytes, s.resident, s.busy};
}
}  // namespace

std::vector<SessionSummary> SessionStore::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SessionSummary> out;
  for (const auto& [id, s] : sessions_) out.push_back(summary_of(*s));
  return out;
}

SessionSummary SessionStore::summary(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) throw ApiError(404, fmt::format("no session {}", id));
  return summary_of(*it->second);
}

int64_t SessionStore::resident_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t b = 0;
  for (const auto& [id, s] : sessions_)
    if (s->resident) b += s->state_bytes;
  return b;
}

int64_t SessionStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int64_t(sessions_.size());
}

void SessionStore::enforce_cap() {
  int64_t bytes = 0;
  std::vector<Session*> idle;
  for (const auto& [id, s] : sessions_)
    if (s->resident) {
      bytes += s->state_bytes;
      if (!s->busy) idle.push_back(s.get());
    }
  if (bytes <= opt_.memory_cap_bytes) return;
  std::sort(idle.begin(), idle.end(),
            [](const Session* a, const Session* b) { return a->last_used < b->last_used; });
  for (Session* s : idle) {  // least recently used first; their files are current
    if (bytes <= opt_.memory_cap_bytes) break;
    s->stream = Stream();
    s->resident = false;
    bytes -= s->state_bytes;
  }
}

}  // namespace rill::serve
