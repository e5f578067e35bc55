// Helpers every op uses: output allocation, input validation, and the shared checks.
#pragma once
#include <string>

#include "rill/autograd/node.h"
#include "rill/backend/backend.h"
#include "rill/core/tensor.h"

namespace rill {

// When on (tests turn it on), every op output is filled with NaN (or a sentinel for integer
// dtypes) before its kernel runs, so an element a kernel forgets to write shows up.
void set_debug_fill_outputs(bool on);
bool debug_fill_outputs();

// A fresh contiguous output for a kernel to write.
Tensor new_output(const Shape& shape, DType dtype);

// Broadcasts t to shape as a stride-0 view, without recording anything (for kernel calls).
Tensor expand_view(const Tensor& t, const Shape& shape, const char* op);

void check_defined(const char* op, const Tensor& t, const char* what = "input");
void check_floating(const char* op, const Tensor& t);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_index_dtype(const char* op, const Tensor& idx);

// 1 where t is nonzero, 0 elsewhere, in dtype (t of any dtype; no gradient: a mask of resets).
Tensor nonzero_mask(const Tensor& t, DType dtype);

// resets [B, T] (any dtype) as a [B*H, T] mask of 0 and 1 (1 where nonzero) in dtype, repeated
// over H heads: what the kernels of the ops with resets take. Undefined stays undefined.
Tensor flat_resets(const Tensor& resets, int64_t heads, DType dtype);

}  // namespace rill
