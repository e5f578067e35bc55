// A2C and PPO losses on the tape (see policy_loss.h).
#include "rill/rl/policy_loss.h"

#include "rill/core/error.h"
#include "rill/core/shape.h"
#include "rill/ops/elementwise.h"
#include "rill/ops/index.h"
#include "rill/ops/reduce.h"
#include "rill/ops/softmax.h"

namespace rill::rl {

namespace {

struct Common {
  Tensor log_probs;   // [M] log pi(a|s)
  Tensor entropy;     // scalar, mean H(pi)
  Tensor value_loss;  // scalar, 0.5 mean((V - G)^2)
};

Common common(const Tensor& logits, const Tensor& values, const Tensor& actions,
              const Tensor& advantages, const Tensor& returns) {
  RILL_CHECK(logits.dim() == 2, "[rl] policy logits must be [M, A], got {}",
             shape_str(logits.shape()));
  const int64_t m = logits.size(0);
  for (const Tensor* t : {&values, &actions, &advantages, &returns})
    RILL_CHECK(t->dim() == 1 && t->size(0) == m,
               "[rl] values, actions, advantages and returns must be [{}] like the logits' "
               "rows, got {}",
               m, shape_str(t->shape()));
  Common c;
  const Tensor logp_all = log_softmax(logits, -1);  // [M, A]
  c.log_probs = gather(logp_all, 1, actions.unsqueeze(1)).squeeze(1);
  c.entropy = neg(mean(sum(mul(exp(logp_all), logp_all), {1})));
  const Tensor err = sub(values, returns.to(values.dtype()));
  c.value_loss = mul(mean(mul(err, err)), 0.5);
  return c;
}

}  // namespace

PolicyLoss a2c_loss(const Tensor& logits, const Tensor& values, const Tensor& actions,
                    const Tensor& advantages, const Tensor& returns, const LossCoefficients& k) {
  const Common c = common(logits, values, actions, advantages, returns);
  const Tensor pg = neg(mean(mul(c.log_probs, advantages.to(logits.dtype()).detach())));
  PolicyLoss out;
  out.total = add(add(pg, mul(c.value_loss, k.vf_coef)), mul(c.entropy, -k.ent_coef));
  out.policy = pg.item<double>();
  out.value = c.value_loss.item<double>();
  out.entropy = c.entropy.item<double>();
  return out;
}

PolicyLoss ppo_loss(const Tensor& logits, const Tensor& values, const Tensor& actions,
                    const Tensor& old_log_probs, const Tensor& advantages, const Tensor& returns,
                    const LossCoefficients& k) {
  RILL_CHECK(k.clip > 0 && k.clip < 1, "[rl] the PPO clip {} must be in (0, 1)", k.clip);
  const Common c = common(logits, values, actions, advantages, returns);
  const Tensor adv = advantages.to(logits.dtype()).detach();
  const Tensor old = old_log_probs.to(logits.dtype()).detach();
  const Tensor ratio = exp(sub(c.log_probs, old));
  const Tensor unclipped = mul(ratio, adv);
  const Tensor clipped = mul(clamp(ratio, 1 - k.clip, 1 + k.clip), adv);
  // min(unclipped, clipped): where the clipped term is smaller it carries no gradient through
  // the ratio, which is what stops the update from moving the policy further.
  const Tensor surrogate = where(lt(clipped, unclipped), clipped, unclipped);
  const Tensor pg = neg(mean(surrogate));
  PolicyLoss out;
  out.total = add(add(pg, mul(c.value_loss, k.vf_coef)), mul(c.entropy, -k.ent_coef));
  out.policy = pg.item<double>();
  out.value = c.value_loss.item<double>();
  out.entropy = c.entropy.item<double>();
  {
    const Tensor r = ratio.detach().to(DType::f64).contiguous();
    const Tensor d = sub(old, c.log_probs).detach().to(DType::f64).contiguous();
    const double* rp = r.data<double>();
    const double* dp = d.data<double>();
    double clipped_n = 0, kl = 0;
    for (int64_t i = 0; i < r.numel(); ++i) {
      clipped_n += std::abs(rp[i] - 1) > k.clip ? 1 : 0;
      kl += dp[i];
    }
    out.clip_fraction = clipped_n / double(r.numel());
    out.approx_kl = kl / double(r.numel());
  }
  return out;
}

}  // namespace rill::rl
