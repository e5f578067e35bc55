// Sampling: temperature, top-k, top-p, greedy; refuses non-finite logits.
#include "rill/train/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "rill/core/error.h"

namespace rill {

std::vector<int64_t> sample(const Tensor& logits, const SamplerOptions& opt, Generator& gen) {
  RILL_CHECK(logits.defined() && logits.dim() == 2, "[sample] logits must be [B, V], got {}",
             logits.defined() ? shape_str(logits.shape()) : "undefined");
  RILL_CHECK(opt.temperature >= 0 && opt.top_k >= 0 && opt.top_p > 0 && opt.top_p <= 1,
             "[sample] temperature {} top_k {} top_p {} out of range", opt.temperature, opt.top_k,
             opt.top_p);
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  std::vector<double> all = logits.to_vector<double>();
  std::vector<int64_t> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const double* l = all.data() + r * vocab;
    // NaN must never reach the sort below (its comparator would not be a strict weak order:
    // undefined behaviour); +inf would give NaN probabilities.
    bool any_finite = false;
    for (int64_t i = 0; i < vocab; ++i) {
      RILL_CHECK(!std::isnan(l[i]) && l[i] != INFINITY,
                 "[sample] the logits of row {} are not finite ({} at token {}): the model's "
                 "output is broken (a diverged or damaged checkpoint?)",
                 r, l[i], i);
      any_finite = any_finite || std::isfinite(l[i]);
    }
    RILL_CHECK(any_finite, "[sample] every logit of row {} is -inf: no token can be drawn", r);
    const uint64_t counter = gen.advance(1);
    if (opt.temperature == 0) {
      out[r] = std::max_element(l, l + vocab) - l;
      continue;
    }
    std::vector<int64_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    // Highest first; ties by id so the order never depends on the sort's stability.
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
    int64_t keep = opt.top_k > 0 ? std::min(opt.top_k, vocab) : vocab;
    std::vector<double> p(keep);
    double total = 0;
    for (int64_t i = 0; i < keep; ++i)
      total += p[i] = std::exp((l[order[i]] - l[order[0]]) / opt.temperature);
    if (opt.top_p < 1) {  // smallest prefix whose mass reaches top_p
      double mass = 0;
      int64_t n = 0;
      while (n < keep && mass < opt.top_p * total) mass += p[n++];
      keep = std::max<int64_t>(n, 1);
      total = 0;
      for (int64_t i = 0; i < keep; ++i) total += p[i];
    }
    double u = uniform_at(gen.seed(), counter) * total, acc = 0;
    out[r] = order[keep - 1];
    for (int64_t i = 0; i < keep; ++i) {
      acc += p[i];
      if (u < acc) {
        out[r] = order[i];
        break;
      }
    }
  }
  return out;
}

}  // namespace rill
