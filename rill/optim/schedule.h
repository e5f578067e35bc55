// Learning-rate schedules as pure functions of the step (0-based: the step about to be taken).
// Every schedule may start with a linear warm-up: lr = base * (step + 1) / warmup_steps.
#pragma once
#include <cstdint>
#include <string>

namespace rill::optim {

enum class ScheduleKind { constant, cosine, inverse_sqrt };

struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // cosine: the step at which min_lr is reached
  double min_lr = 0;        // cosine floor

  double lr_at(int64_t step) const;
};

ScheduleKind parse_schedule_kind(const std::string& name);  // "constant", "cosine", "inverse_sqrt"

}  // namespace rill::optim
