// The prefix cache (prefix_cache.h): a list in recency order; a lookup hashes every prefix of the
// request once (FNV-1a, running) and compares keys only where the hash of that length agrees.
#include "rill/serve/prefix_cache.h"

namespace rill::serve {

namespace {

constexpr uint64_t kFnvBasis = 1469598103934665603ull, kFnvPrime = 1099511628211ull;

uint64_t mix(uint64_t h, int64_t token) { return (h ^ static_cast<uint64_t>(token)) * kFnvPrime; }

Stream copy_of(const Stream& s) {
  Stream c = s;
  c.state = s.state.clone();
  return c;
}

}  // namespace

std::optional<PrefixHit> PrefixCache::lookup(const std::vector<int64_t>& tokens) {
  std::vector<uint64_t> prefix_hash(tokens.size() + 1);  // prefix_hash[n]: of tokens[0, n)
  prefix_hash[0] = kFnvBasis;
  for (size_t i = 0; i < tokens.size(); ++i) prefix_hash[i + 1] = mix(prefix_hash[i], tokens[i]);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.lookups;
  stats_.tokens_requested += int64_t(tokens.size());
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const size_t n = it->key.size();
    if (n > tokens.size() || prefix_hash[n] != it->hash) continue;
    if (best != entries_.end() && best->key.size() >= n) continue;
    if (std::equal(it->key.begin(), it->key.end(), tokens.begin())) best = it;
  }
  if (best == entries_.end()) return std::nullopt;
  entries_.splice(entries_.begin(), entries_, best);  // most recently used
  ++stats_.hits;
  stats_.tokens_reused += int64_t(best->key.size());
  return PrefixHit{copy_of(best->stream), int64_t(best->key.size())};
}

void PrefixCache::insert(const std::vector<int64_t>& tokens, const Stream& stream) {
  if (tokens.empty() || max_entries_ <= 0) return;
  Entry e;
  e.key = tokens;
  e.hash = kFnvBasis;
  for (int64_t t : tokens) e.hash = mix(e.hash, t);
  e.stream = copy_of(stream);
  e.bytes = int64_t(e.stream.state.bytes() + (e.key.size() + e.stream.recent.size()) * 8);
  if (e.bytes > max_bytes_) return;  // would not fit even alone
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->hash == e.hash && it->key == e.key) {
      stats_.bytes -= it->bytes;
      entries_.erase(it);
      break;
    }
  stats_.bytes += e.bytes;
  entries_.push_front(std::move(e));
  while (int64_t(entries_.size()) > max_entries_ || stats_.bytes > max_bytes_) {
    stats_.bytes -= entries_.back().bytes;
    entries_.pop_back();
  }
  stats_.entries = int64_t(entries_.size());
}

PrefixCacheStats PrefixCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PrefixCacheStats s = stats_;
  s.entries = int64_t(entries_.size());
  return s;
}

}  // namespace rill::serve
