// Forecasting: windows of the standardised series, per-window normalisation, MSE/MAE against
// the naive forecasts of the same windows.
#include "rill/tasks/forecasting.h"

#include <cmath>

#include "rill/autograd/grad_mode.h"
#include "rill/io/json_fields.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/reduce.h"

namespace rill {

using nlohmann::json;

ForecastingConfig ForecastingConfig::from_json(const json& j) {
  ForecastingConfig c;
  JsonFields f(j, "the forecasting task");
  f.ignore("type");
  std::string normalize = "window";
  f.get("dataset", c.dataset);
  f.get("input_len", c.input_len);
  f.get("horizon", c.horizon);
  f.get("stride", c.stride);
  f.get("normalize", normalize);
  f.finish();
  RILL_CHECK(!c.dataset.empty(), "[config] the forecasting task needs a \"dataset\"");
  f.check("input_len", c.input_len, c.input_len > 0, "positive");
  f.check("horizon", c.horizon, c.horizon >= 0, "0 (the data set's own) or positive");
  f.check("stride", c.stride, c.stride > 0, "positive");
  RILL_CHECK(normalize == "window" || normalize == "none",
             "[config] the forecasting task: \"normalize\" is \"{}\"; it must be \"window\" or "
             "\"none\"",
             normalize);
  c.window_norm = normalize == "window";
  return c;
}

json ForecastingConfig::to_json() const {
  return {{"type", "forecasting"},  {"dataset", dataset},
          {"input_len", input_len}, {"horizon", horizon},
          {"stride", stride},       {"normalize", window_norm ? "window" : "none"}};
}

ForecastingTask::ForecastingTask(const ForecastingConfig& config, data::Series series,
                                 const TaskContext& ctx)
    : config_(config), ctx_(ctx), series_(std::move(series)) {
  if (config_.horizon == 0) config_.horizon = series_.horizon;
  RILL_CHECK(config_.horizon > 0, "[task] {} suggests no horizon: set \"horizon\"", series_.name);
  values_ = series_.standardised();
  features_ = series_.features();
  const data::SplitRange tr = series_.range("train");
  train_ = data::make_windows(values_, tr.begin, tr.end,
                              {config_.input_len, config_.horizon, config_.stride});
  batches_ = std::make_unique<ShuffledBatches>(train_.size(), ctx.batch, ctx.seed);
  for (const char* split : {"valid", "test"}) {
    const data::SplitRange r = series_.range(split);
    data::window_starts(series_.length(), r.begin, r.end,
                        {config_.input_len, config_.horizon, 1});  // refuses a split too short
  }
}

ForecastingTask::ForecastingTask(const ForecastingConfig& config, const TaskContext& ctx)
    : ForecastingTask(config, data::open_series(config.dataset, ctx.data_dir), ctx) {}

json ForecastingTask::describe() const {
  json j = config_.to_json();
  j["features"] = features_;
  j["seasonal_period"] = series_.seasonal_period;
  return j;
}

TaskBatch ForecastingTask::next_batch() {
  Tensor idx = batches_->next();
  TaskBatch b;
  b.inputs = index_select(train_.input, 0, idx);    // [B, L, F]
  b.targets = index_select(train_.target, 0, idx);  // [B, H, F]
  b.items = ctx_.batch;
  return b;
}

Tensor ForecastingTask::predict(SequenceModel& model, const Tensor& input) {
  const int64_t b = input.size(0);
  Tensor x = input, mean, std;
  if (config_.window_norm) {
    NoGradGuard no_grad;                  // statistics of the data: nothing to differentiate
    mean = rill::mean(input, {1}, true);  // [B, 1, F]
    Tensor centred = sub(input, mean);
    std = sqrt(add(rill::mean(mul(centred, centred), {1}, true), data::kWindowStdEps));
    x = div(centred, std);
  }
  Tensor out = model.forward(x, nullptr);  // [B, L, H * F]
  Tensor pred = out.select(1, out.size(1) - 1).reshape({b, config_.horizon, features_});
  return config_.window_norm ? add(mul(pred, std), mean) : pred;
}

Tensor ForecastingTask::loss(SequenceModel& model, const TaskBatch& batch, State*) {
  Tensor err = sub(predict(model, batch.inputs), batch.targets);
  return rill::mean(mul(err, err));
}

Metrics ForecastingTask::evaluate(SequenceModel& model, const std::string& split,
                                  int64_t max_batches) {
  EvaluationScope scope(model, max_batches);
  const data::SplitRange r = series_.range(split);
  const data::WindowSpec spec{config_.input_len, config_.horizon, 1};
  data::Windows w = data::make_windows(values_, r.begin, r.end, spec);
  int64_t n = w.size();
  if (max_batches > 0) n = std::min(n, max_batches * ctx_.batch);
  double se = 0, ae = 0;
  for (int64_t first = 0; first < n; first += ctx_.batch) {
    const int64_t len = std::min(ctx_.batch, n - first);
    Tensor err = sub(predict(model, w.input.narrow(0, first, len)), w.target.narrow(0, first, len));
    se += sum(mul(err, err)).item<double>();
    ae += sum(abs(err)).item<double>();
  }
  const double count = double(n * config_.horizon * features_);
  Metrics m;
  m.loss = se / count;
  m.primary = "mse";
  m.values = {{"mse", se / count}, {"mae", ae / count}};
  if (n == w.size()) {  // the naive forecasts of the same windows, when the split was whole
    const data::NaiveBaselines nb =
        data::naive_baselines(values_, r.begin, r.end, spec, series_.seasonal_period);
    m.values.push_back({"last_value_mse", nb.last_value.mse});
    m.values.push_back({"last_value_mae", nb.last_value.mae});
    m.values.push_back({"seasonal_naive_mse", nb.seasonal_naive.mse});
    m.values.push_back({"seasonal_naive_mae", nb.seasonal_naive.mae});
  }
  m.values.push_back({"windows", double(n)});
  return m;
}

namespace {

const TaskRegistration kRegistered("forecasting", [](const json& config, const TaskContext& ctx) {
  return std::make_unique<ForecastingTask>(ForecastingConfig::from_json(config), ctx);
});

}  // namespace

}  // namespace rill
