// The process-wide choice of backend (ref or cpu) that every op dispatches on.

#include "rill/backend/backend.h"

namespace rill {

namespace {
thread_local Backend g_backend = Backend::cpu;
}

Backend active_backend() { return g_backend; }
void set_active_backend(Backend b) { g_backend = b; }
const char* backend_name(Backend b) { return b == Backend::ref ? "ref" : "cpu"; }

}  // namespace rill
