// Sampling the next token from logits: temperature, top-k, top-p (nucleus), greedy at
// temperature 0. Seeded by a counter-based generator, so a (seed, offset) pair replays exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "rill/core/rng.h"
#include "rill/core/tensor.h"

namespace rill {

struct SamplerOptions {
  double temperature = 1.0;  // 0: greedy (argmax)
  int64_t top_k = 0;         // 0: no cut
  double top_p = 1.0;        // 1: no cut
};

// logits [B, V] -> one id per row. Draws one counter of `gen` per row.
std::vector<int64_t> sample(const Tensor& logits, const SamplerOptions& opt, Generator& gen);

}  // namespace rill
