// rill/optim: AdamW, SGD and Adafactor against steps computed here in scalar double arithmetic
// from the published update rules (torch.optim.AdamW / SGD, transformers.Adafactor), parameter
// groups and weight decay, learning-rate schedules at their boundaries, gradient clipping, and
// optimiser state: names, exact resume, and errors.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rill/autograd/grad_mode.h"
#include "rill/nn/embedding.h"
#include "rill/nn/linear.h"
#include "rill/nn/mlp.h"
#include "rill/nn/norm.h"
#include "rill/nn/rnn_cells.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/reduce.h"
#include "rill/optim/adafactor.h"
#include "rill/optim/adamw.h"
#include "rill/optim/clip.h"
#include "rill/optim/schedule.h"
#include "rill/optim/sgd.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::optim;
using namespace rill::testing;

namespace {

constexpr DType f64 = DType::f64;
using Vec = std::vector<double>;

Tensor param(const Shape& shape, uint64_t seed) {
  return random(shape, f64, seed).set_requires_grad(true);
}

std::vector<ParamGroup> one_param(const std::string& name, const Tensor& p, double wd) {
  return {ParamGroup{{{name, p}}, wd}};
}

Tensor tensor_of(const Vec& v, const Shape& s) { return Tensor::from_vector<double>(v, s); }

// The gradient of step t (1-based): fresh random values every step.
Vec grad_at(const Shape& shape, int64_t t, uint64_t seed = 100) {
  return random(shape, f64, seed + t).to_vector<double>();
}

// The optimiser's state tensor called `name` (undefined if absent).
Tensor state_of(const Optimizer& opt, const std::string& name) {
  for (const auto& [k, t] : opt.state())
    if (k == name) return t;
  return Tensor();
}

std::vector<std::string> state_names(const Optimizer& opt) {
  std::vector<std::string> out;
  for (const auto& [k, t] : opt.state()) out.push_back(k);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AdamW: torch.optim.AdamW with decoupled decay

TEST(AdamW, MatchesHandComputedSteps) {
  struct Case {
    double lr, wd;
    AdamWOptions opt;
  };
  const Case cases[] = {{1e-1, 0.0, {}}, {5e-2, 0.1, {}}, {2e-2, 0.3, {0.8, 0.95, 1e-6}}};
  const Shape shape{3, 4};
  for (const Case& c : cases) {
    Tensor p = param(shape, 1);
    AdamW opt(one_param("w", p, c.wd), c.lr, c.opt);
    Vec ep = p.to_vector<double>(), m(ep.size(), 0), v(ep.size(), 0);
    for (int64_t t = 1; t <= 3; ++t) {
      Vec g = grad_at(shape, t);
      p.set_grad(tensor_of(g, shape));
      opt.step();
      const double b1 = c.opt.beta1, b2 = c.opt.beta2;
      const double bc1 = 1 - std::pow(b1, double(t)), bc2 = 1 - std::pow(b2, double(t));
      for (size_t i = 0; i < ep.size(); ++i) {
        ep[i] *= 1 - c.lr * c.wd;  // decoupled decay first, on the old parameter
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        ep[i] -= c.lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + c.opt.eps);
      }
      EXPECT_TRUE(all_close(p, tensor_of(ep, shape)))
          << "lr " << c.lr << " wd " << c.wd << " step " << t;
    }
    EXPECT_TRUE(all_close(state_of(opt, "exp_avg.w"), tensor_of(m, shape)));
    EXPECT_TRUE(all_close(state_of(opt, "exp_avg_sq.w"), tensor_of(v, shape)));
    EXPECT_EQ(opt.step_count(), 3);
  }
}

TEST(AdamW, SeveralParametersAndF32) {
  // Two parameters created in one step: each keeps its own state.
  for (DType dt : {DType::f32, f64}) {
    Tensor a = random({5}, dt, 1).set_requires_grad(true);
    Tensor b = random({2, 3}, dt, 2).set_requires_grad(true);
    Tensor b0 = b.clone();
    AdamW opt({ParamGroup{{{"a", a}, {"b", b}}, 0.0}}, 0.1);
    Vec ea = a.to_vector<double>(), ga = random({5}, dt, 3).to_vector<double>();
    a.set_grad(random({5}, dt, 3));
    opt.step();  // b has no gradient: left alone, no state
    // Step 1 of Adam moves each element by lr * g / (|g| + eps) = lr * sign(g).
    for (size_t i = 0; i < ea.size(); ++i) ea[i] -= 0.1 * ga[i] / (std::abs(ga[i]) + 1e-8);
    EXPECT_TRUE(all_close(a, tensor_of(ea, {5}).to(dt)));
    EXPECT_TRUE(bitwise_equal(b, b0));
    EXPECT_EQ(state_names(opt), (std::vector<std::string>{"exp_avg.a", "exp_avg_sq.a", "step"}));
  }
}

// ---------------------------------------------------------------------------------------------
// SGD: torch.optim.SGD (coupled L2 decay; the momentum buffer starts as the first gradient)

TEST(SGD, MatchesHandComputedSteps) {
  struct Case {
    const char* what;
    double lr, wd;
    SGDOptions opt;
  };
  const Case cases[] = {
      {"plain", 0.1, 0.0, {}},
      {"weight decay", 0.1, 0.05, {}},
      {"momentum", 0.05, 0.0, {0.9, 0.0, false}},
      {"momentum dampening decay", 0.05, 0.02, {0.9, 0.3, false}},
      {"nesterov", 0.05, 0.0, {0.8, 0.0, true}},
      {"nesterov decay", 0.05, 0.1, {0.8, 0.0, true}},
  };
  const Shape shape{7};
  for (const Case& c : cases) {
    Tensor p = param(shape, 2);
    SGD opt(one_param("w", p, c.wd), c.lr, c.opt);
    Vec ep = p.to_vector<double>(), buf;
    for (int64_t t = 1; t <= 3; ++t) {
      Vec g = grad_at(shape, t);
      p.set_grad(tensor_of(g, shape));
      opt.step();
      const double mu = c.opt.momentum;
      if (mu != 0 && buf.empty()) buf.assign(ep.size(), 0);
      for (size_t i = 0; i < ep.size(); ++i) {
        double d = g[i] + c.wd * ep[i];
        if (mu != 0) {
          buf[i] = t == 1 ? d : mu * buf[i] + (1 - c.opt.dampening) * d;
          d = c.opt.nesterov ? d + mu * buf[i] : buf[i];
        }
        ep[i] -= c.lr * d;
      }
      EXPECT_TRUE(all_close(p, tensor_of(ep, shape))) << c.what << " step " << t;
    }
    if (c.opt.momentum != 0) {
      EXPECT_TRUE(all_close(state_of(opt, "momentum.w"), tensor_of(buf, shape))) << c.what;
    } else {
      EXPECT_EQ(state_names(opt), std::vector<std::string>{"step"}) << c.what;
    }
  }
  Tensor p = param(shape, 2);
  expect_error([&] { SGD(one_param("w", p, 0), 0.1, {0.9, 0.1, true}); }, {"[sgd]", "Nesterov"});
  expect_error([&] { SGD(one_param("w", p, 0), 0.1, {0.0, 0.0, true}); }, {"[sgd]", "Nesterov"});
}

// ---------------------------------------------------------------------------------------------
// Adafactor: transformers.Adafactor, transliterated to scalar loops over [mats, rows, cols]

namespace {

struct AdafactorRef {
  AdafactorRef(AdafactorOptions o, double lr, Shape shape)
      : o(o), lr(lr), shape(std::move(shape)) {}
  AdafactorOptions o;
  double lr;
  Shape shape;
  Vec r, c, v, m;  // row and column statistics (factored), full second moment, momentum
  int64_t t = 0;
  int clipped_steps = 0;  // how often the RMS clip was active, so a case can prove it ran

  void step(Vec& p, const Vec& g, double wd) {
    ++t;
    const int64_t n = int64_t(p.size());
    const bool factored = shape.size() >= 2;
    const int64_t cols = factored ? shape.back() : n, rows = factored ? shape[shape.size() - 2] : 1;
    const int64_t mats = n / (rows * cols);
    // _get_lr: relative step, then scaled by the parameter's RMS (floored at eps2).
    double rms_p = 0;
    for (double x : p) rms_p += x * x;
    rms_p = std::sqrt(rms_p / n);
    double step_size = lr;
    if (o.relative_step)
      step_size = std::min(o.warmup_init ? 1e-6 * t : 1e-2, 1.0 / std::sqrt(double(t)));
    const double lr_t = o.scale_parameter ? step_size * std::max(o.eps2, rms_p) : step_size;
    const double beta2t = 1.0 - std::pow(double(t), o.decay_rate);

    Vec u(n);
    if (factored) {
      if (r.empty()) r.assign(mats * rows, 0), c.assign(mats * cols, 0);
      for (int64_t b = 0; b < mats; ++b) {
        auto sq = [&](int64_t i, int64_t j) {
          const double x = g[b * rows * cols + i * cols + j];
          return x * x + o.eps1;
        };
        for (int64_t i = 0; i < rows; ++i) {  // mean over the last dim
          double s = 0;
          for (int64_t j = 0; j < cols; ++j) s += sq(i, j);
          r[b * rows + i] = beta2t * r[b * rows + i] + (1 - beta2t) * s / cols;
        }
        for (int64_t j = 0; j < cols; ++j) {  // mean over the second-to-last dim
          double s = 0;
          for (int64_t i = 0; i < rows; ++i) s += sq(i, j);
          c[b * cols + j] = beta2t * c[b * cols + j] + (1 - beta2t) * s / rows;
        }
        double r_mean = 0;
        for (int64_t i = 0; i < rows; ++i) r_mean += r[b * rows + i];
        r_mean /= rows;
        // _approx_sq_grad: rsqrt(r / mean(r)) outer rsqrt(c), times the gradient.
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) {
            const int64_t k = b * rows * cols + i * cols + j;
            u[k] = 1.0 / std::sqrt(r[b * rows + i] / r_mean) / std::sqrt(c[b * cols + j]) * g[k];
          }
      }
    } else {
      if (v.empty()) v.assign(n, 0);
      for (int64_t i = 0; i < n; ++i) {
        v[i] = beta2t * v[i] + (1 - beta2t) * (g[i] * g[i] + o.eps1);
        u[i] = 1.0 / std::sqrt(v[i]) * g[i];
      }
    }
    double rms_u = 0;
    for (double x : u) rms_u += x * x;
    rms_u = std::sqrt(rms_u / n);
    const double clip = std::max(1.0, rms_u / o.clip_threshold);
    clipped_steps += clip > 1.0;
    for (double& x : u) x = x / clip * lr_t;
    if (o.beta1 > 0) {
      if (m.empty()) m.assign(n, 0);
      for (int64_t i = 0; i < n; ++i) u[i] = m[i] = o.beta1 * m[i] + (1 - o.beta1) * u[i];
    }
    for (int64_t i = 0; i < n; ++i) {
      p[i] += -wd * lr_t * p[i];
      p[i] -= u[i];
    }
  }
};

}  // namespace

TEST(Adafactor, MatchesHandComputedSteps) {
  struct Case {
    const char* what;
    Shape shape;
    double lr, wd;
    AdafactorOptions opt;
    double param_scale = 1.0;  // tiny parameters put the eps2 floor on the RMS scale to work
  };
  AdafactorOptions defaults;
  AdafactorOptions absolute = defaults;
  absolute.relative_step = false;
  absolute.scale_parameter = false;
  AdafactorOptions momentum = defaults;
  momentum.relative_step = false;
  momentum.beta1 = 0.9;
  momentum.clip_threshold = 0.5;
  AdafactorOptions warmup = defaults;
  warmup.warmup_init = true;
  const Case cases[] = {
      {"factored matrix, relative step", {3, 4}, 0.0, 0.0, defaults},
      {"unfactored vector, relative step", {6}, 0.0, 0.0, defaults},
      {"unfactored vector, absolute lr", {5}, 0.05, 0.0, absolute},
      {"factored matrix, absolute lr", {4, 3}, 0.05, 0.0, absolute},
      {"factored matrix, beta1, decay, clipping", {3, 5}, 0.02, 0.1, momentum},
      {"unfactored vector, beta1, decay", {5}, 0.02, 0.1, momentum},
      {"batched matrices, warm-up init", {2, 3, 4}, 0.0, 0.0, warmup},
      {"unfactored vector, eps2 floor", {6}, 0.0, 0.0, defaults, 1e-5},
  };
  for (const Case& c : cases) {
    Tensor p = param(c.shape, 3);
    {
      NoGradGuard g;
      p.copy_(mul(p.detach(), c.param_scale));
    }
    Adafactor opt(one_param("w", p, c.wd), c.lr, c.opt);
    AdafactorRef ref(c.opt, c.lr, c.shape);
    Vec ep = p.to_vector<double>();
    for (int64_t t = 1; t <= 3; ++t) {
      Vec g = grad_at(c.shape, t);
      p.set_grad(tensor_of(g, c.shape));
      opt.step();
      ref.step(ep, g, c.wd);
      EXPECT_TRUE(all_close(p, tensor_of(ep, c.shape))) << c.what << ", step " << t;
    }
    // The state holds the same statistics, under transformers' names and shapes.
    if (c.shape.size() >= 2) {
      Shape rows(c.shape.begin(), c.shape.end() - 1), cols(c.shape.begin(), c.shape.end() - 2);
      cols.push_back(c.shape.back());
      EXPECT_TRUE(all_close(state_of(opt, "exp_avg_sq_row.w"), tensor_of(ref.r, rows))) << c.what;
      EXPECT_TRUE(all_close(state_of(opt, "exp_avg_sq_col.w"), tensor_of(ref.c, cols))) << c.what;
      EXPECT_FALSE(state_of(opt, "exp_avg_sq.w").defined()) << c.what;
    } else {
      EXPECT_TRUE(all_close(state_of(opt, "exp_avg_sq.w"), tensor_of(ref.v, c.shape))) << c.what;
    }
    if (c.opt.beta1 > 0) {
      EXPECT_TRUE(all_close(state_of(opt, "exp_avg.w"), tensor_of(ref.m, c.shape))) << c.what;
    } else {
      EXPECT_FALSE(state_of(opt, "exp_avg.w").defined()) << c.what;
    }
  }
}

TEST(Adafactor, CasesReachTheirBranches) {
  // The clipping case really clips, and the eps2 case really sits below the floor.
  AdafactorOptions o;
  o.relative_step = false;
  o.beta1 = 0.9;
  o.clip_threshold = 0.5;
  AdafactorRef ref(o, 0.02, {3, 5});
  Vec p = random({3, 5}, f64, 3).to_vector<double>();
  for (int64_t t = 1; t <= 3; ++t) ref.step(p, grad_at({3, 5}, t), 0.1);
  EXPECT_GT(ref.clipped_steps, 0);
  Vec tiny = random({6}, f64, 3).to_vector<double>();
  double rms = 0;
  for (double& x : tiny) x *= 1e-5, rms += x * x;
  EXPECT_LT(std::sqrt(rms / 6), AdafactorOptions{}.eps2);

  Tensor w = param({2}, 1);
  expect_error([&] { Adafactor(one_param("w", w, 0), 0.0, o); }, {"[adafactor]", "lr"});
}

// ---------------------------------------------------------------------------------------------
// Parameter groups: decay on Linear weights only

namespace {
class Model : public nn::Module {
 public:
  explicit Model(uint64_t seed) {
    nn::LinearOptions lo;
    lo.dtype = f64;
    embed = register_module("embed", std::make_shared<nn::Embedding>(5, 4, seed, 1.0, f64));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(4, 1e-5, true, f64));
    rms = register_module("rms", std::make_shared<nn::RMSNorm>(4, 1e-6, f64));
    fc = register_module("fc", std::make_shared<nn::Linear>(4, 3, seed + 1, lo));
    cell = register_module("cell", std::make_shared<nn::GRUCell>(3, 2, seed + 2, f64));
  }
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::RMSNorm> rms;
  std::shared_ptr<nn::Linear> fc;
  std::shared_ptr<nn::GRUCell> cell;
};

std::vector<std::string> group_names(const ParamGroup& g) {
  std::vector<std::string> out;
  for (const auto& [n, t] : g.params) out.push_back(n);
  return out;
}
}  // namespace

TEST(ParamGroups, DecayOnWeightsOnly) {
  Model model(1);
  auto groups = param_groups(model, 0.1);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].weight_decay, 0.1);
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  EXPECT_EQ(group_names(groups[0]),
            (std::vector<std::string>{"fc.weight", "cell.weight_ih", "cell.weight_hh"}));
  EXPECT_EQ(group_names(groups[1]),
            (std::vector<std::string>{"embed.weight", "norm.weight", "norm.bias", "rms.weight",
                                      "fc.bias", "cell.bias_ih", "cell.bias_hh"}));

  // With a zero gradient AdamW moves nothing but the decayed weights, by exactly (1 - lr wd).
  auto before = model.state_dict();
  for (auto& [n, t] : before) t = t.clone();
  for (auto& p : model.parameters()) p.set_grad(Tensor::zeros(p.shape(), f64));
  const double lr = 0.1, wd = 0.1;
  AdamW opt(param_groups(model, wd), lr);
  opt.step();
  auto after = model.state_dict();
  for (size_t i = 0; i < after.size(); ++i) {
    const std::string& name = after[i].first;
    const bool decays = name == "fc.weight" || name.starts_with("cell.weight");
    Vec expected = before[i].second.to_vector<double>();
    if (decays)
      for (double& x : expected) x *= 1 - lr * wd;
    EXPECT_TRUE(bitwise_equal(after[i].second, tensor_of(expected, after[i].second.shape())))
        << name << (decays ? " should decay" : " should not decay");
  }

  // single_group decays everything, embeddings included.
  Model all(1);
  for (auto& p : all.parameters()) p.set_grad(Tensor::zeros(p.shape(), f64));
  Vec e0 = all.embed->weight.to_vector<double>();
  AdamW opt2(single_group(all, wd), lr);
  opt2.step();
  for (double& x : e0) x *= 1 - lr * wd;
  EXPECT_TRUE(bitwise_equal(all.embed->weight, tensor_of(e0, {5, 4})));
}

// ---------------------------------------------------------------------------------------------
// Schedules (step is 0-based: the step about to be taken)

TEST(Schedule, ConstantWithWarmup) {
  Schedule s{ScheduleKind::constant, 1e-3, 4, 0, 0};
  EXPECT_DOUBLE_EQ(s.lr_at(0), 1e-3 / 4);  // warm-up never starts at zero
  EXPECT_DOUBLE_EQ(s.lr_at(3), 1e-3);      // warmup - 1 reaches the base
  EXPECT_EQ(s.lr_at(4), 1e-3);
  EXPECT_EQ(s.lr_at(100000), 1e-3);
  Schedule none{ScheduleKind::constant, 2e-3, 0, 0, 0};
  EXPECT_EQ(none.lr_at(0), 2e-3);
  expect_error([&] { s.lr_at(-1); }, {"[schedule]", "-1"});
}

TEST(Schedule, CosineBoundaries) {
  const double base = 1e-3, floor = 1e-5, tol = tolerance(f64) * base;
  Schedule s{ScheduleKind::cosine, base, 10, 110, floor};
  EXPECT_NEAR(s.lr_at(0), base / 10, tol);
  EXPECT_NEAR(s.lr_at(9), base, tol);
  EXPECT_NEAR(s.lr_at(10), base, tol);                // the decay starts from the base
  EXPECT_NEAR(s.lr_at(60), (base + floor) / 2, tol);  // midpoint of the decay
  EXPECT_NEAR(s.lr_at(35), floor + (base - floor) * 0.5 * (1 + std::cos(M_PI / 4)), tol);
  EXPECT_EQ(s.lr_at(110), floor);
  EXPECT_EQ(s.lr_at(111), floor);
  EXPECT_EQ(s.lr_at(100000), floor);
  for (int64_t t = 10; t < 110; ++t) EXPECT_GE(s.lr_at(t), s.lr_at(t + 1)) << t;
  Schedule bad{ScheduleKind::cosine, base, 10, 10, 0};
  expect_error([&] { bad.lr_at(10); }, {"[schedule]", "cosine", "10"});
}

TEST(Schedule, InverseSqrtContinuousAtWarmup) {
  const double base = 1e-3, tol = tolerance(f64) * base;
  Schedule s{ScheduleKind::inverse_sqrt, base, 16, 0, 0};
  EXPECT_NEAR(s.lr_at(0), base / 16, tol);
  EXPECT_NEAR(s.lr_at(15), base, tol);
  // base * sqrt(w / (step + 1)) equals the warm-up's last value at step w - 1, then decays.
  EXPECT_NEAR(s.lr_at(16), base * std::sqrt(16.0 / 17.0), tol);
  EXPECT_NEAR(s.lr_at(63), base / 2, tol);
  EXPECT_NEAR(s.lr_at(255), base / 4, tol);
  for (int64_t t = 0; t < 15; ++t) EXPECT_LT(s.lr_at(t), s.lr_at(t + 1)) << t;
  for (int64_t t = 15; t < 100; ++t) EXPECT_GT(s.lr_at(t), s.lr_at(t + 1)) << t;
  Schedule none{ScheduleKind::inverse_sqrt, base, 0, 0, 0};
  EXPECT_NEAR(none.lr_at(0), base, tol);
  EXPECT_NEAR(none.lr_at(3), base / 2, tol);
}

TEST(Schedule, ParseKind) {
  EXPECT_EQ(parse_schedule_kind("constant"), ScheduleKind::constant);
  EXPECT_EQ(parse_schedule_kind("cosine"), ScheduleKind::cosine);
  EXPECT_EQ(parse_schedule_kind("inverse_sqrt"), ScheduleKind::inverse_sqrt);
  expect_error([] { parse_schedule_kind("linear"); },
               {"[schedule]", "\"linear\"", "constant", "cosine", "inverse_sqrt"});
  expect_error([] { parse_schedule_kind("Cosine"); }, {"\"Cosine\""});
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_, eps 1e-6)

namespace {
double global_norm(const std::vector<Tensor>& ps) {
  double s = 0;
  for (const Tensor& p : ps)
    if (p.grad().defined())
      for (double x : p.grad().to_vector<double>()) s += x * x;
  return std::sqrt(s);
}
}  // namespace

TEST(ClipGradNorm, ClipsToMaxNormAndReturnsPreClipNorm) {
  std::vector<Tensor> ps = {param({3, 4}, 1), param({5}, 2), param({2}, 3)};
  ps[0].set_grad(random({3, 4}, f64, 11));
  ps[1].set_grad(random({5}, f64, 12));  // ps[2] has no gradient and is skipped
  std::vector<Vec> g0 = {ps[0].grad().to_vector<double>(), ps[1].grad().to_vector<double>()};
  double norm = 0;
  for (const Vec& g : g0)
    for (double x : g) norm += x * x;
  norm = std::sqrt(norm);
  const double max_norm = 0.5;
  ASSERT_GT(norm, max_norm);

  const double returned = clip_grad_norm(ps, max_norm);
  EXPECT_NEAR(returned, norm, tolerance(f64) * norm);
  const double scale = max_norm / (norm + 1e-6);
  for (size_t k = 0; k < 2; ++k) {
    Vec e = g0[k];
    for (double& x : e) x *= scale;
    EXPECT_TRUE(all_close(ps[k].grad(), tensor_of(e, ps[k].shape()))) << "param " << k;
  }
  EXPECT_FALSE(ps[2].grad().defined());
  // max_norm up to torch's epsilon: max_norm * norm / (norm + 1e-6).
  EXPECT_NEAR(global_norm(ps), max_norm, max_norm * (1e-6 / norm + tolerance(f64)));
}

// Many blocks of the parallel sum, a ragged last one, several tensors: the norm is the exact
// sum of squares (within the f64 tolerance), and the same bits on any thread count.
TEST(ClipGradNorm, LargeGradientsAnyThreadCount) {
  for (DType dt : {DType::f32, f64}) {
    std::vector<Tensor> ps = {random({40003}, dt, 1).set_requires_grad(true),
                              random({7, 9}, dt, 2).set_requires_grad(true)};
    ps[0].set_grad(random({40003}, dt, 3));
    ps[1].set_grad(random({7, 9}, dt, 4));
    const Tensor g0 = ps[0].grad().clone(), g1 = ps[1].grad().clone();
    const double norm = global_norm(ps);
    expect_thread_invariant(
        [&] {
          ps[0].set_grad(g0.clone());
          ps[1].set_grad(g1.clone());
          const double got = clip_grad_norm(ps, 0.5 * norm);
          EXPECT_NEAR(got, norm, tolerance(f64) * norm) << dtype_name(dt);
          return std::vector<Tensor>{Tensor::scalar(got, f64), ps[0].grad(), ps[1].grad()};
        },
        fmt::format("clip_grad_norm {}", dtype_name(dt)));
  }
}

TEST(ClipGradNorm, NoChangeBelowMaxNorm) {
  for (DType dt : {DType::f32, f64}) {
    std::vector<Tensor> ps = {random({4, 2}, dt, 1).set_requires_grad(true)};
    ps[0].set_grad(random({4, 2}, dt, 2));
    Tensor g0 = ps[0].grad().clone();
    const double norm = global_norm(ps);
    EXPECT_NEAR(clip_grad_norm(ps, 2 * norm), norm, tolerance(dt) * norm);
    EXPECT_TRUE(bitwise_equal(ps[0].grad(), g0)) << dtype_name(dt);
  }
  std::vector<Tensor> ps = {param({2}, 1)};
  expect_error([&] { clip_grad_norm(ps, 0.0); }, {"[clip_grad_norm]", "max_norm"});
}

// ---------------------------------------------------------------------------------------------
// Optimiser state: names, exact resume, errors

TEST(OptimizerState, NamesAreSlotDotParameter) {
  Model model(1);
  for (auto& p : model.parameters()) p.set_grad(Tensor::ones(p.shape(), f64));
  AdamW adam(param_groups(model, 0.1), 1e-3);
  EXPECT_EQ(state_names(adam), std::vector<std::string>{"step"});
  adam.step();
  auto names = state_names(adam);
  EXPECT_EQ(names.front(), "exp_avg.fc.weight");
  EXPECT_EQ(names[1], "exp_avg_sq.fc.weight");
  EXPECT_EQ(names.back(), "step");
  EXPECT_EQ(names.size(), 2 * model.parameters().size() + 1);
  for (const auto& p : model.named_parameters()) {
    EXPECT_EQ(state_of(adam, "exp_avg." + p.name).shape(), p.tensor.shape()) << p.name;
    EXPECT_TRUE(state_of(adam, "exp_avg_sq." + p.name).defined()) << p.name;
  }
  Tensor step = state_of(adam, "step");
  EXPECT_EQ(step.dtype(), DType::i64);
  EXPECT_EQ(step.item<int64_t>(), 1);

  SGD sgd(param_groups(model, 0.0), 0.1, {0.9, 0.0, false});
  sgd.step();
  EXPECT_TRUE(state_of(sgd, "momentum.cell.weight_hh").defined());
}

namespace {
using MakeOpt = std::function<std::unique_ptr<Optimizer>(const nn::Module&)>;

// loss = sum(y * y) for an f32 SwiGLU MLP on fixed inputs: real gradients that change each step.
void train(nn::MLP& m, Optimizer& opt, int steps) {
  Tensor x = random({6, 4}, DType::f32, 77);
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Tensor y = m.forward(x);
    sum(mul(y, y)).backward();
    opt.step();
  }
}
}  // namespace

TEST(OptimizerState, LoadStateResumesBitwise) {
  const std::vector<std::pair<const char*, MakeOpt>> makers = {
      {"adamw",
       [](const nn::Module& m) { return std::make_unique<AdamW>(param_groups(m, 0.1), 1e-2); }},
      {"sgd nesterov",
       [](const nn::Module& m) {
         return std::make_unique<SGD>(param_groups(m, 0.01), 1e-2, SGDOptions{0.9, 0.0, true});
       }},
      {"adafactor beta1",
       [](const nn::Module& m) {
         AdafactorOptions o;
         o.beta1 = 0.9;
         return std::make_unique<Adafactor>(param_groups(m, 0.01), 0.0, o);
       }},
  };
  for (const auto& [what, make] : makers) {
    nn::MLP straight(4, 8, nn::MLPKind::swiglu, 1);
    auto opt_straight = make(straight);
    train(straight, *opt_straight, 5);

    nn::MLP first(4, 8, nn::MLPKind::swiglu, 1);
    auto opt_first = make(first);
    train(first, *opt_first, 2);
    // Snapshot as a checkpoint would: copies, since state() hands out the live tensors.
    auto model_state = first.state_dict();
    auto opt_state = opt_first->state();
    for (auto& [n, t] : model_state) t = t.clone();
    for (auto& [n, t] : opt_state) t = t.clone();

    nn::MLP resumed(4, 8, nn::MLPKind::swiglu, 99);  // other weights, overwritten by the load
    auto opt_resumed = make(resumed);
    resumed.load_state_dict(model_state);
    opt_resumed->load_state(opt_state);
    EXPECT_EQ(opt_resumed->step_count(), 2) << what;
    train(resumed, *opt_resumed, 3);

    auto a = straight.named_parameters(), b = resumed.named_parameters();
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(bitwise_equal(b[i].tensor, a[i].tensor)) << what << ": " << a[i].name;
    auto sa = opt_straight->state(), sb = opt_resumed->state();
    ASSERT_EQ(sa.size(), sb.size()) << what;
    for (size_t i = 0; i < sa.size(); ++i) {
      EXPECT_EQ(sa[i].first, sb[i].first) << what;
      EXPECT_TRUE(bitwise_equal(sb[i].second, sa[i].second)) << what << ": " << sa[i].first;
    }
  }
}

TEST(OptimizerState, LoadStateErrors) {
  Tensor p = param({2, 3}, 1);
  AdamW opt(one_param("fc.weight", p, 0.0), 0.1);
  p.set_grad(random({2, 3}, f64, 2));
  opt.step();
  const auto good = opt.state();
  const Tensor step = Tensor::scalar(5, DType::i64);

  expect_error(
      [&] {
        opt.load_state({{"exp_avg.fc.wieght", Tensor::zeros({2, 3}, f64)}, {"step", step}});
      },
      {"[optimizer]", "\"exp_avg.fc.wieght\"", "\"fc.wieght\""});
  expect_error(
      [&] {
        opt.load_state({{"exp_avg.fc.weight", Tensor::zeros({2, 3}, f64)}});
      },
      {"[optimizer]", "\"step\""});
  expect_error(
      [&] {
        opt.load_state({{"exp_avg", Tensor::zeros({2, 3}, f64)}, {"step", step}});
      },
      {"[optimizer]", "malformed", "\"exp_avg\""});
  // A wrongly shaped slot is reported, at the latest when the next step reads it.
  expect_error(
      [&] {
        opt.load_state({{"exp_avg.fc.weight", Tensor::zeros({3}, f64)},
                        {"exp_avg_sq.fc.weight", Tensor::zeros({2, 3}, f64)},
                        {"step", step}});
        opt.step();
      },
      {"\"exp_avg.fc.weight\"", "[3]", "[2, 3]"});

  // A failed load leaves the optimiser as it was.
  opt.load_state(good);
  auto snapshot = opt.state();
  for (auto& [n, t] : snapshot) t = t.clone();
  expect_error(
      [&] {
        opt.load_state({{"exp_avg.nope", Tensor::zeros({2}, f64)}, {"step", step}});
      },
      {"\"nope\""});
  auto now = opt.state();
  ASSERT_EQ(now.size(), snapshot.size());
  for (size_t i = 0; i < now.size(); ++i) {
    EXPECT_EQ(now[i].first, snapshot[i].first);
    EXPECT_TRUE(bitwise_equal(now[i].second, snapshot[i].second)) << now[i].first;
  }
}

TEST(Optimizer, RejectsBadParametersAndGradients) {
  Tensor ids = Tensor::zeros({3}, DType::i64);
  expect_error([&] { AdamW(one_param("ids", ids, 0), 0.1); }, {"[optimizer]", "\"ids\"", "i64"});
  Tensor p = param({2, 3}, 1);
  AdamW opt(one_param("w", p, 0), 0.1);
  p.set_grad(Tensor::zeros({3, 2}, f64));
  expect_error([&] { opt.step(); }, {"[optimizer]", "\"w\"", "[3, 2]", "[2, 3]"});
}
