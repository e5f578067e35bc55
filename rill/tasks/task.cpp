// Metrics helpers and the task registry.
#include "rill/tasks/task.h"

#include "rill/core/registry.h"

namespace rill {

namespace {

Registry<TaskFactory>& tasks() {
  static Registry<TaskFactory> r("task type");
  return r;
}

}  // namespace

const double* Metrics::find(const std::string& name) const {
  for (const auto& [n, v] : values)
    if (n == name) return &v;
  return nullptr;
}

double Metrics::value(const std::string& name) const {
  if (const double* v = find(name)) return *v;
  std::vector<std::string> names;
  for (const auto& [n, v] : values) names.push_back(n);
  fail("[metrics] no metric \"{}\" (have: {})", name, fmt::join(names, ", "));
}

nlohmann::json Metrics::to_json() const {
  nlohmann::json j = {{"loss", loss}, {"primary", primary}};
  for (const auto& [n, v] : values) j[n] = v;
  return j;
}

EvaluationScope::EvaluationScope(SequenceModel& model, int64_t max_batches)
    : model_(model), was_training_(model.is_training()) {
  RILL_CHECK(max_batches >= 0, "[task] max_batches must be >= 0 (0: the whole split), got {}",
             max_batches);
  model_.eval();
}

TaskRegistration::TaskRegistration(const std::string& type, TaskFactory factory) {
  tasks().add(type, std::move(factory));
}

std::vector<std::string> registered_tasks() { return tasks().names(); }

std::unique_ptr<Task> make_task(const nlohmann::json& config, const TaskContext& ctx) {
  RILL_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
             "[config] the task needs a string \"type\" (one of: {}), got {}",
             fmt::join(tasks().names(), ", "), config.dump());
  RILL_CHECK(ctx.batch > 0, "[config] the batch size must be positive, got {}", ctx.batch);
  return tasks().get(config["type"].get<std::string>())(config, ctx);
}

}  // namespace rill
