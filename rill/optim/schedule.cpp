// Learning-rate schedules: constant, cosine and inverse square root, each with a warm-up.
#include "rill/optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "rill/core/error.h"

namespace rill::optim {

double Schedule::lr_at(int64_t step) const {
  RILL_CHECK(step >= 0, "[schedule] negative step {}", step);
  if (step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  switch (kind) {
    case ScheduleKind::constant:
      return base_lr;
    case ScheduleKind::cosine: {
      RILL_CHECK(total_steps > warmup_steps,
                 "[schedule] cosine needs total_steps ({}) > warmup_steps ({})", total_steps,
                 warmup_steps);
      double progress =
          std::min(1.0, double(step - warmup_steps) / double(total_steps - warmup_steps));
      return min_lr + (base_lr - min_lr) * 0.5 * (1 + std::cos(M_PI * progress));
    }
    case ScheduleKind::inverse_sqrt: {
      // Continuous with the warm-up: base at step warmup-1, then base * sqrt(w / (step + 1)).
      double w = double(std::max<int64_t>(warmup_steps, 1));
      return base_lr * std::sqrt(w / double(std::max<int64_t>(step + 1, warmup_steps)));
    }
  }
  return base_lr;
}

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "inverse_sqrt") return ScheduleKind::inverse_sqrt;
  fail("[schedule] unknown schedule \"{}\" (constant, cosine, inverse_sqrt)", name);
}

}  // namespace rill::optim
