// Internal to weight_gemm: what the dispatcher (weight_gemm.cpp) hands the kernels of each ISA
// (weight_gemm_avx2.cpp, weight_gemm_avx512.cpp) and the table of kernels each exports. Only
// plain data and function pointers cross the boundary, so no function is declared with one
// target and defined with another.
#pragma once
#include <cstdint>

namespace rill::cpu {

// One call, prepared: x already packed by row blocks (see weight_gemm.cpp), the block sizes
// fixed, the weights' panels and scales as weights.h lays them out.
struct WeightGemmCall {
  // x [B, K] with row stride ldx, in row blocks: block i covers rows [row0[i], row0[i+1]).
  const float* x = nullptr;
  int64_t ldx = 0;
  const int64_t* row0 = nullptr;  // [blocks + 1]
  int64_t blocks = 0;
  // The dot kernel's x (null for the others, which read x itself): three planes (x's hi, mid
  // and lo bf16 parts), plane_stride dwords apart, each holding row block i at block_off[i],
  // k-pair-major: dword (i, r) = the pair (x[row0 + r, 2i], x[row0 + r, 2i + 1]).
  const float* xp = nullptr;
  const int64_t* block_off = nullptr;  // [blocks]
  int64_t plane_stride = 0;
  int64_t N = 0, K = 0;
  const void* panels = nullptr;
  const float* scales = nullptr;  // int8 only
  const float* bias = nullptr;    // [N] or null
  float* y = nullptr;
  int64_t ldy = 0;
  bool accumulate = false;
};

// Computes y for the output panels [p0, p1) (channels 16 p0 .. 16 p1, clipped to N), every row.
using WeightPanelsFn = void (*)(const WeightGemmCall&, int64_t p0, int64_t p1);

struct WeightKernels {
  WeightPanelsFn f32, bf16, int8;
  WeightPanelsFn bf16_dot;  // VDPBF16PS on x split into three bf16 parts; null without it
  // The largest row block each kernel takes: f32, bf16, int8, bf16_dot.
  int64_t max_rows[4];
};

namespace avx2 {
const WeightKernels& weight_kernels();
}  // namespace avx2

namespace avx512 {
const WeightKernels& weight_kernels();
}  // namespace avx512

}  // namespace rill::cpu
