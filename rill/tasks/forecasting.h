// Time-series forecasting (data/series.h, data/windows.h): from an input window of L steps of a
// series (standardised by the train split's mean and std), predict the next H steps. The model
// reads the window step by step (x [B, L, F]) and its output at the last step, H * F values, is
// the forecast [B, H, F]. With "normalize": "window" (the default, as the Non-stationary
// Transformer) each input window is scaled by its own mean and std and the forecast scaled back,
// so the model sees level-free inputs. Loss: MSE; metrics on the standardised scale: MSE and MAE,
// beside those of the naive last-value and seasonal-naive forecasts of the same windows
// (last_value_mse, last_value_mae, seasonal_naive_mse, seasonal_naive_mae; when a split is
// evaluated whole).
//
// Config: {"type": "forecasting", "dataset": "sunspots", "input_len": 96, "horizon": 12,
//          "normalize": "window", "stride": 1}
//   horizon 0 takes the data set's suggested one; stride spaces the training windows.
#pragma once
#include <string>

#include "rill/data/series.h"
#include "rill/data/windows.h"
#include "rill/tasks/shuffled_batches.h"
#include "rill/tasks/task.h"

namespace rill {

struct ForecastingConfig {
  std::string dataset;
  int64_t input_len = 96, horizon = 0, stride = 1;
  bool window_norm = true;
  static ForecastingConfig from_json(const nlohmann::json& j);  // strict
  nlohmann::json to_json() const;
};

class ForecastingTask : public Task {
 public:
  ForecastingTask(const ForecastingConfig& config, const TaskContext& ctx);
  // From a series already in memory (tests make their own).
  ForecastingTask(const ForecastingConfig& config, data::Series series, const TaskContext& ctx);

  std::string type() const override { return "forecasting"; }
  ModelIO model_io() const override { return {0, features_, config_.horizon * features_}; }
  nlohmann::json describe() const override;
  std::string unit() const override { return "sequences"; }
  TaskBatch next_batch() override;
  uint64_t position() const override { return batches_->position(); }
  void set_position(uint64_t position) override { batches_->set_position(position); }
  Tensor loss(SequenceModel& model, const TaskBatch& batch, State* state) override;
  Metrics evaluate(SequenceModel& model, const std::string& split, int64_t max_batches) override;

  // The forecast [B, H, F] for input windows [B, L, F] (standardised scale).
  Tensor predict(SequenceModel& model, const Tensor& input);

 private:
  ForecastingConfig config_;
  TaskContext ctx_;
  data::Series series_;
  Tensor values_;  // standardised [N_t, F]
  int64_t features_ = 0;
  data::Windows train_;  // every training window, on the standardised scale
  std::unique_ptr<ShuffledBatches> batches_;
};

}  // namespace rill
