// The profiler's table: a map by scope name, filled by the thread that runs the ops.
#include "rill/core/profiler.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace rill {

namespace {

std::mutex g_mutex;
std::map<std::string, ProfileEntry>& entries() {
  static std::map<std::string, ProfileEntry> e;
  return e;
}
thread_local ProfileScope* g_current = nullptr;

bool from_environment() {
  const char* v = std::getenv("RILL_PROFILE");
  return v != nullptr && std::strcmp(v, "0") != 0;
}

}  // namespace

bool Profiler::enabled_ = from_environment();

void Profiler::enable(bool on) { enabled_ = on; }

void Profiler::reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  entries().clear();
}

std::vector<ProfileEntry> Profiler::report() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<ProfileEntry> out;
  for (const auto& [name, e] : entries()) out.push_back(e);
  std::sort(out.begin(), out.end(),
            [](const ProfileEntry& a, const ProfileEntry& b) { return a.self_s > b.self_s; });
  return out;
}

std::string Profiler::table(double wall_s, size_t top) {
  const std::vector<ProfileEntry> r = report();
  double sum = 0;
  for (const ProfileEntry& e : r) sum += e.self_s;
  const double base = wall_s > 0 ? wall_s : sum;
  std::string s =
      "| scope | self s | share | with nested s | calls | us per call |\n"
      "|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < r.size() && i < top; ++i)
    s += fmt::format("| {} | {:.3f} | {:.1f}% | {:.3f} | {} | {:.1f} |\n", r[i].name, r[i].self_s,
                     100 * r[i].self_s / base, r[i].total_s, r[i].calls,
                     1e6 * r[i].total_s / double(std::max<int64_t>(r[i].calls, 1)));
  if (wall_s > 0)
    s += fmt::format("| (outside any scope) | {:.3f} | {:.1f}% | | | |\n", wall_s - sum,
                     100 * (wall_s - sum) / wall_s);
  return s;
}

void ProfileScope::start() {
  // Inside a parallel region the time is already the enclosing scope's (on the thread that
  // opened the region); recording the workers too would count it once per thread.
  if (omp_in_parallel()) return;
  active_ = true;
  parent_ = g_current;
  g_current = this;
  t0_ = std::chrono::steady_clock::now();
}

void ProfileScope::stop() {
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  g_current = parent_;
  if (parent_) parent_->children_ += total;
  std::lock_guard<std::mutex> lock(g_mutex);
  ProfileEntry& e = entries()[name_];
  if (e.name.empty()) e.name = name_;
  e.self_s += total - children_;
  e.total_s += total;
  e.calls += 1;
}

}  // namespace rill
