// Which SIMD level the cpu backend's hand-written kernels run at: detected once from the CPU,
// overridable by the environment (RILL_ISA) and, inside one process, by SimdLevelOverride (tests
// and benchmarks run every path on one machine). The build baseline is x86-64-v3 (AVX2 + FMA);
// AVX-512 code is compiled under `#pragma GCC target` and only runs where this says so.
//
// RILL_ISA=avx2 forces AVX2; RILL_ISA=avx512 allows AVX-512 F/DQ/BW/VL but not the bf16 dot
// product (VDPBF16PS); RILL_ISA=avx512_bf16 or auto (or unset) take the best the CPU has. A level
// the CPU lacks falls back to the best it has, with a warning. These are the semantics of the
// RILL_ISA that vec_math (branch vecmath) reads, refined by one level for kernels that have a
// bf16 path; kernels without one treat avx512_bf16 as avx512.
#pragma once

namespace rill::cpu {

enum class SimdLevel { avx2 = 0, avx512 = 1, avx512_bf16 = 2 };  // ordered: each includes the last

const char* simd_level_name(SimdLevel level);
// Whether this CPU (and OS: the zmm state is saved) can run `level`; AVX2 always.
bool simd_level_supported(SimdLevel level);
// The best level this CPU supports, ignoring RILL_ISA and overrides.
SimdLevel simd_level_best();
// The level kernels use now.
SimdLevel simd_level();

// Sets `level` (which must be supported) for its lifetime and restores the previous one after.
// Not for use while kernels run on other threads.
class SimdLevelOverride {
 public:
  explicit SimdLevelOverride(SimdLevel level);
  ~SimdLevelOverride();
  SimdLevelOverride(const SimdLevelOverride&) = delete;
  SimdLevelOverride& operator=(const SimdLevelOverride&) = delete;

 private:
  SimdLevel prev_;
};

}  // namespace rill::cpu
