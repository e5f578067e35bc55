// Dropout op: draws counters from the generator, applies the mask kernel, and records a backward
// that re-applies the same mask (rebuilt from seed and offset) to the output gradient.
#include "rill/ops/dropout.h"

#include "rill/backend/cpu/dropout.h"
#include "rill/backend/ref/dropout.h"
#include "rill/ops/op_util.h"

namespace rill {

namespace {

Tensor apply_mask(const Tensor& x, double p, uint64_t seed, uint64_t offset);

struct DropoutBackward : Node {
  double p;
  uint64_t seed, offset;
  DropoutBackward(double p, uint64_t s, uint64_t o) : p(p), seed(s), offset(o) {}
  const char* name() const override { return "dropout"; }
  std::vector<Tensor> backward(const std::vector<Tensor>& g) override {
    // The op is linear in x with a diagonal Jacobian: the same mask and scale map dy to dx.
    return {apply_mask(g[0], p, seed, offset)};
  }
};

Tensor apply_mask(const Tensor& x, double p, uint64_t seed, uint64_t offset) {
  Tensor y = new_output(x.shape(), x.dtype());
  RILL_KERNEL(dropout, x, p, seed, offset, y);
  if (should_record({&x})) record(std::make_shared<DropoutBackward>(p, seed, offset), {&x}, {&y});
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  check_floating("dropout", x);
  RILL_CHECK(p >= 0.0 && p < 1.0, "[dropout] p must be in [0, 1), got {} (x {})", p,
             shape_str(x.shape()));
  if (!training || p == 0.0) return x;
  const uint64_t offset = gen.advance(static_cast<uint64_t>(x.numel()));
  return apply_mask(x, p, gen.seed(), offset);
}

}  // namespace rill
