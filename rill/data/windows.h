// Forecasting windows over a series and the two naive baselines that forecasts are judged
// against.
//
// A window at step t has input rows [t - L, t) and target rows [t, t + H) (L: input length,
// H: horizon). The windows of a split are those whose targets lie wholly inside the split:
// t = max(begin, L), then every `stride` rows while t + H <= end. Inputs may reach back before
// the split into earlier rows (the first test windows read the end of valid), as the usual
// forecasting loaders (Informer, Autoformer) do: those rows are the past at forecast time, and
// no target of another split is ever used.
//
// Per-window normalisation (Non-stationary Transformer, Liu et al. 2022): each input window has
// its own mean and std per feature over its L rows, std = sqrt(population variance + 1e-5). The
// windows are handed out raw with these statistics; the task normalises the input,
// (input - mean) / std, and de-normalises the prediction, pred * std + mean, if it wants to.
//
// Naive baselines, over the same windows, errors averaged over every window, step and feature:
//   last value:      every target row predicted as the last input row, x[t - 1];
//   seasonal naive:  row t + h (h = 0..H-1) predicted as the row one season m earlier that is
//                    before t: x[t + h - m * (floor(h / m) + 1)] (Hyndman's snaive). It reads up
//                    to m rows before t, which may be more than L: it needs t >= m.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "rill/core/tensor.h"
#include "rill/data/series.h"

namespace rill::data {

struct WindowSpec {
  int64_t input_length = 0;  // L
  int64_t horizon = 0;       // H
  int64_t stride = 1;
};

struct Windows {
  Tensor input;   // f32 [B, L, F], raw
  Tensor target;  // f32 [B, H, F], raw
  Tensor mean;    // f32 [B, 1, F]: mean of each input window over its L rows
  Tensor std;     // f32 [B, 1, F]: sqrt(population variance + 1e-5) of each input window
  std::vector<int64_t> starts;  // t of each window: input [t - L, t), target [t, t + H)
  int64_t size() const { return static_cast<int64_t>(starts.size()); }  // B
};

inline constexpr double kWindowStdEps = 1e-5;

// The window starts t of the rule above for targets in rows [begin, end) of a series of n
// rows. No window fitting is an error that gives the numbers.
std::vector<int64_t> window_starts(int64_t n, int64_t begin, int64_t end, const WindowSpec& spec);

// values: f32 [N_t, F] (any strides).
Windows make_windows(const Tensor& values, int64_t begin, int64_t end, const WindowSpec& spec);
// The windows of one split ("train", "valid" or "test") of a series, on its raw values (pass
// series.standardised() to the overload above for the standardised scale).
Windows make_windows(const Series& series, std::string_view split, const WindowSpec& spec);

struct ForecastScores {
  double mse = 0, mae = 0;
};

struct NaiveBaselines {
  ForecastScores last_value, seasonal_naive;
  int64_t windows = 0, horizon = 0, season = 0;
};

// Both baselines over the windows of rows [begin, end) of values f32 [N_t, F].
NaiveBaselines naive_baselines(const Tensor& values, int64_t begin, int64_t end,
                               const WindowSpec& spec, int64_t season);

enum class Scale { raw, standardised };
// Over one split of a series, with its seasonal period; standardised: on
// (values - train_mean) / train_std, the scale forecasting papers quote.
NaiveBaselines naive_baselines(const Series& series, std::string_view split, const WindowSpec& spec,
                               Scale scale = Scale::standardised);

}  // namespace rill::data
