// Forecasting windows and naive baselines (see windows.h).
#include "rill/data/windows.h"

#include <algorithm>
#include <cmath>

#include "rill/core/error.h"

namespace rill::data {

namespace {

// A contiguous f32 [N_t, F] copy or view of values.
Tensor checked_values(const Tensor& values) {
  RILL_CHECK(values.defined() && values.dtype() == DType::f32 && values.dim() == 2,
             "[data] forecasting values must be f32 [N_t, F], got {}",
             values.defined() ? values.str() : "an undefined tensor");
  return values.contiguous();
}

}  // namespace

std::vector<int64_t> window_starts(int64_t n, int64_t begin, int64_t end, const WindowSpec& spec) {
  const int64_t L = spec.input_length, H = spec.horizon;
  RILL_CHECK(L >= 1 && H >= 1 && spec.stride >= 1,
             "[data] windows need input length >= 1, horizon >= 1 and stride >= 1: got L {}, H "
             "{}, stride {}",
             L, H, spec.stride);
  RILL_CHECK(0 <= begin && begin < end && end <= n,
             "[data] target rows [{}, {}) are not a range inside the {} rows of the series", begin,
             end, n);
  const int64_t first = std::max(begin, L);
  RILL_CHECK(first + H <= end,
             "[data] no window fits: targets must lie in rows [{}, {}) ({} rows) and each input "
             "needs L = {} rows before its first target, so the first window would start at "
             "row {} and end at {} > {} (H = {})",
             begin, end, end - begin, L, first, first + H, end, H);
  std::vector<int64_t> starts;
  for (int64_t t = first; t + H <= end; t += spec.stride) starts.push_back(t);
  return starts;
}

Windows make_windows(const Tensor& values_in, int64_t begin, int64_t end, const WindowSpec& spec) {
  const Tensor values = checked_values(values_in);
  const int64_t n = values.size(0), f = values.size(1);
  const int64_t L = spec.input_length, H = spec.horizon;
  Windows w;
  w.starts = window_starts(n, begin, end, spec);
  const int64_t b = w.size();
  w.input = Tensor::empty({b, L, f}, DType::f32);
  w.target = Tensor::empty({b, H, f}, DType::f32);
  w.mean = Tensor::empty({b, 1, f}, DType::f32);
  w.std = Tensor::empty({b, 1, f}, DType::f32);
  const float* v = values.data<float>();
  float* in = w.input.data<float>();
  float* tg = w.target.data<float>();
  float* mean = w.mean.data<float>();
  float* sd = w.std.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t t = w.starts[size_t(i)];
    std::copy(v + (t - L) * f, v + t * f, in + i * L * f);
    std::copy(v + t * f, v + (t + H) * f, tg + i * H * f);
    for (int64_t c = 0; c < f; ++c) {
      // Two passes in double: the mean first, then the squared deviations from it.
      double s = 0;
      for (int64_t k = 0; k < L; ++k) s += v[(t - L + k) * f + c];
      const double m = s / double(L);
      double ss = 0;
      for (int64_t k = 0; k < L; ++k) {
        const double d = v[(t - L + k) * f + c] - m;
        ss += d * d;
      }
      mean[i * f + c] = static_cast<float>(m);
      sd[i * f + c] = static_cast<float>(std::sqrt(ss / double(L) + kWindowStdEps));
    }
  }
  return w;
}

Windows make_windows(const Series& series, std::string_view split, const WindowSpec& spec) {
  const SplitRange r = series.range(split);
  return make_windows(series.values, r.begin, r.end, spec);
}

NaiveBaselines naive_baselines(const Tensor& values_in, int64_t begin, int64_t end,
                               const WindowSpec& spec, int64_t season) {
  const Tensor values = checked_values(values_in);
  const int64_t n = values.size(0), f = values.size(1), H = spec.horizon;
  RILL_CHECK(season >= 1, "[data] the seasonal period must be at least 1 row, got {}", season);
  std::vector<int64_t> starts = window_starts(n, begin, end, spec);
  RILL_CHECK(starts.front() >= season,
             "[data] seasonal naive reads the row one season ({} rows) before each window, but "
             "the first window starts at row {}: use a split that starts at row {} or later, or "
             "an input length of at least {}",
             season, starts.front(), season, season);
  const float* v = values.data<float>();
  double se_last = 0, ae_last = 0, se_season = 0, ae_season = 0;
  for (int64_t t : starts)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t back = t + h - season * (h / season + 1);  // < t, >= t - season
      for (int64_t c = 0; c < f; ++c) {
        const double y = v[(t + h) * f + c];
        const double e_last = y - v[(t - 1) * f + c], e_season = y - v[back * f + c];
        se_last += e_last * e_last;
        ae_last += std::abs(e_last);
        se_season += e_season * e_season;
        ae_season += std::abs(e_season);
      }
    }
  const double count = double(starts.size()) * double(H) * double(f);
  NaiveBaselines r;
  r.last_value = {se_last / count, ae_last / count};
  r.seasonal_naive = {se_season / count, ae_season / count};
  r.windows = static_cast<int64_t>(starts.size());
  r.horizon = H;
  r.season = season;
  return r;
}

NaiveBaselines naive_baselines(const Series& series, std::string_view split, const WindowSpec& spec,
                               Scale scale) {
  const SplitRange r = series.range(split);
  return naive_baselines(scale == Scale::standardised ? series.standardised() : series.values,
                         r.begin, r.end, spec, series.seasonal_period);
}

}  // namespace rill::data
