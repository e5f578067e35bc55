// CPU detection and the RILL_ISA override for cpu/isa.h.
#include "rill/backend/cpu/isa.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rill/core/error.h"

namespace rill::cpu {

namespace {

// GCC's __builtin_cpu_supports also checks that the OS saves the zmm state (XCR0).
SimdLevel detect_best() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  if (!avx512) return SimdLevel::avx2;
  return __builtin_cpu_supports("avx512bf16") ? SimdLevel::avx512_bf16 : SimdLevel::avx512;
}

SimdLevel from_env() {
  const SimdLevel best = simd_level_best();
  const char* env = std::getenv("RILL_ISA");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) return best;
  for (SimdLevel l : {SimdLevel::avx2, SimdLevel::avx512, SimdLevel::avx512_bf16}) {
    if (std::strcmp(env, simd_level_name(l)) != 0) continue;
    if (l <= best) return l;
    std::fprintf(stderr, "rill: RILL_ISA=%s but this CPU lacks it; using %s\n", env,
                 simd_level_name(best));
    return best;
  }
  std::fprintf(stderr,
               "rill: unknown RILL_ISA=%s (expected avx2, avx512, avx512_bf16 or auto); using %s\n",
               env, simd_level_name(best));
  return best;
}

std::atomic<SimdLevel>& current() {
  static std::atomic<SimdLevel> level{from_env()};
  return level;
}

}  // namespace

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx2:
      return "avx2";
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx512_bf16:
      return "avx512_bf16";
  }
  return "?";
}

SimdLevel simd_level_best() {
  static const SimdLevel best = detect_best();
  return best;
}

bool simd_level_supported(SimdLevel level) { return level <= simd_level_best(); }

SimdLevel simd_level() { return current().load(std::memory_order_relaxed); }

SimdLevelOverride::SimdLevelOverride(SimdLevel level) : prev_(simd_level()) {
  RILL_CHECK(simd_level_supported(level), "[SimdLevelOverride] this CPU cannot run {}",
             simd_level_name(level));
  current().store(level, std::memory_order_relaxed);
}

SimdLevelOverride::~SimdLevelOverride() { current().store(prev_, std::memory_order_relaxed); }

}  // namespace rill::cpu
