// Which kernel implementation ops dispatch to. `ref` is the naive oracle; `cpu` the fast one.
// Tests run an op under both and compare; everything else runs `cpu`.
#pragma once
#include "rill/core/profiler.h"

namespace rill {

enum class Backend { ref, cpu };

Backend active_backend();
void set_active_backend(Backend b);
const char* backend_name(Backend b);

class BackendGuard {
 public:
  explicit BackendGuard(Backend b) : prev_(active_backend()) { set_active_backend(b); }
  ~BackendGuard() { set_active_backend(prev_); }
  BackendGuard(const BackendGuard&) = delete;
  BackendGuard& operator=(const BackendGuard&) = delete;

 private:
  Backend prev_;
};

}  // namespace rill

// RILL_KERNEL(fn, args...): calls ref::fn or cpu::fn for the active backend, timed by the
// profiler when it is on.
#define RILL_KERNEL(fn, ...)                                 \
  do {                                                       \
    ::rill::ProfileScope rill_profile_scope_("kernel " #fn); \
    if (::rill::active_backend() == ::rill::Backend::ref)    \
      ::rill::ref::fn(__VA_ARGS__);                          \
    else                                                     \
      ::rill::cpu::fn(__VA_ARGS__);                          \
  } while (0)
