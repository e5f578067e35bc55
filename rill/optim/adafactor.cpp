// Adafactor: factored second moments for matrices, the full moment for vectors.
#include "rill/optim/adafactor.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace rill::optim {

Adafactor::Adafactor(std::vector<ParamGroup> groups, double lr, AdafactorOptions opt)
    : Optimizer(std::move(groups), lr), opt_(opt) {
  RILL_CHECK(opt.relative_step || lr > 0, "[adafactor] needs lr > 0 when relative_step is off");
}

void Adafactor::update(const std::string& name, Tensor& p, const Tensor& g, double wd, int64_t t) {
  const bool factored = p.dim() >= 2;
  const int64_t n = p.numel();
  const int64_t cols = factored ? p.size(-1) : n;
  const int64_t rows = factored ? p.size(-2) : 1;
  const int64_t mats = n / std::max<int64_t>(rows * cols, 1);  // leading dims batch the matrices
  // Only a factored (rank >= 2) parameter has row and column statistics: for rank 1 the range
  // end() - 2 would lie before begin().
  Shape row_shape, col_shape;
  if (factored) {
    row_shape.assign(p.shape().begin(), p.shape().end() - 1);  // shape[:-1]
    col_shape.assign(p.shape().begin(), p.shape().end() - 2);  // shape[:-2] + shape[-1:]
    col_shape.push_back(cols);
  }

  RILL_DISPATCH_FLOAT(p.dtype(), "adafactor", T, {
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    double rms_p = 0;
    for (int64_t i = 0; i < n; ++i) rms_p += double(pp[i]) * pp[i];
    rms_p = std::sqrt(rms_p / std::max<int64_t>(n, 1));
    double lr = lr_value(t, rms_p);
    const double beta2 = 1 - std::pow(double(t), opt_.decay_rate);

    std::vector<double> u(n);  // the update before clipping, in double
    if (factored) {
      T* r = slot("exp_avg_sq_row", name, row_shape, p.dtype()).template data<T>();
      T* c = slot("exp_avg_sq_col", name, col_shape, p.dtype()).template data<T>();
      for (int64_t b = 0; b < mats; ++b) {
        const T* gb = gp + b * rows * cols;
        T* rb = r + b * rows;
        T* cb = c + b * cols;
        for (int64_t i = 0; i < rows; ++i) {
          double s = 0;
          for (int64_t j = 0; j < cols; ++j)
            s += double(gb[i * cols + j]) * gb[i * cols + j] + opt_.eps1;
          rb[i] = T(beta2 * rb[i] + (1 - beta2) * (s / cols));
        }
        for (int64_t j = 0; j < cols; ++j) {
          double s = 0;
          for (int64_t i = 0; i < rows; ++i)
            s += double(gb[i * cols + j]) * gb[i * cols + j] + opt_.eps1;
          cb[j] = T(beta2 * cb[j] + (1 - beta2) * (s / rows));
        }
        double row_mean = 0;
        for (int64_t i = 0; i < rows; ++i) row_mean += rb[i];
        row_mean /= rows;
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) {
            const int64_t k = b * rows * cols + i * cols + j;
            u[k] = gp[k] / std::sqrt(double(rb[i]) / row_mean) / std::sqrt(double(cb[j]));
          }
      }
    } else {
      T* v = slot("exp_avg_sq", name, p.shape(), p.dtype()).template data<T>();
      for (int64_t i = 0; i < n; ++i) {
        v[i] = T(beta2 * v[i] + (1 - beta2) * (double(gp[i]) * gp[i] + opt_.eps1));
        u[i] = gp[i] / std::sqrt(double(v[i]));
      }
    }
    double rms_u = 0;
    for (double x : u) rms_u += x * x;
    rms_u = std::sqrt(rms_u / std::max<int64_t>(n, 1));
    const double scale = lr / std::max(1.0, rms_u / opt_.clip_threshold);
    T* m =
        opt_.beta1 > 0 ? slot("exp_avg", name, p.shape(), p.dtype()).template data<T>() : nullptr;
    for (int64_t i = 0; i < n; ++i) {
      double step = u[i] * scale;
      if (m) {
        m[i] = T(opt_.beta1 * m[i] + (1 - opt_.beta1) * step);
        step = m[i];
      }
      pp[i] = T(pp[i] - wd * lr * pp[i] - step);
    }
  });
}

double Adafactor::lr_value(int64_t t, double rms_p) const {
  double rel = lr();
  if (opt_.relative_step) {
    const double min_step = opt_.warmup_init ? 1e-6 * t : 1e-2;
    rel = std::min(min_step, 1.0 / std::sqrt(double(t)));
  }
  return opt_.scale_parameter ? rel * std::max(opt_.eps2, rms_p) : rel;
}

}  // namespace rill::optim
