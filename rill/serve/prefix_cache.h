// The prefix cache of `rill serve`: the stream after a prompt (and after a completion), keyed by
// every token it has read, in a cache bounded in entries and bytes. A request whose tokens
// extend a cached key starts from a copy of that stream and reads only the rest; that is exact
// because a stream's state depends only on the tokens it has read (extend_stream). Least
// recently used entries go first. Thread-safe.
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <vector>

#include "rill/train/generate.h"

namespace rill::serve {

struct PrefixHit {
  Stream stream;        // a copy: the caller owns it
  int64_t matched = 0;  // tokens of the request covered by the entry (its key's length)
};

struct PrefixCacheStats {
  int64_t entries = 0, bytes = 0;
  int64_t lookups = 0, hits = 0;
  int64_t tokens_requested = 0, tokens_reused = 0;  // over all lookups
  double hit_rate() const { return lookups ? double(hits) / double(lookups) : 0.0; }
};

class PrefixCache {
 public:
  PrefixCache(int64_t max_entries, int64_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // The longest entry whose key is a prefix of `tokens` (the whole of them included).
  std::optional<PrefixHit> lookup(const std::vector<int64_t>& tokens);
  // Keeps a copy of `stream` under the key `tokens` (every token it has read, pending included),
  // replacing an entry with the same key, then evicts down to the bounds.
  void insert(const std::vector<int64_t>& tokens, const Stream& stream);
  PrefixCacheStats stats() const;

 private:
  struct Entry {
    std::vector<int64_t> key;
    uint64_t hash = 0;  // of the key, to skip most comparisons
    Stream stream;
    int64_t bytes = 0;
  };
  mutable std::mutex mu_;
  std::list<Entry> entries_;  // most recently used first
  int64_t max_entries_, max_bytes_;
  PrefixCacheStats stats_;
};

}  // namespace rill::serve
