// FlushDenormalsGuard: FTZ and DAZ in MXCSR, set and restored on every OpenMP pool thread.
#include "rill/backend/cpu/denormals.h"

#include <omp.h>
#include <xmmintrin.h>

namespace rill::cpu {

namespace {

constexpr unsigned kFtz = 0x8000;  // results below the normal range become 0
constexpr unsigned kDaz = 0x0040;  // denormal operands are read as 0
constexpr unsigned kBoth = kFtz | kDaz;

// The same bits on the calling thread and on every pool thread (one region of the full pool).
void set_on_all_threads(unsigned bits) {
  auto apply = [bits] { _mm_setcsr((_mm_getcsr() & ~kBoth) | bits); };
  apply();
#pragma omp parallel num_threads(omp_get_max_threads())
  apply();
}

}  // namespace

FlushDenormalsGuard::FlushDenormalsGuard() : saved_(_mm_getcsr() & kBoth) {
  set_on_all_threads(kBoth);
}

FlushDenormalsGuard::~FlushDenormalsGuard() { set_on_all_threads(saved_); }

bool flushing_denormals() { return (_mm_getcsr() & kBoth) == kBoth; }

}  // namespace rill::cpu
