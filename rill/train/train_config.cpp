// Reading, checking and writing a run's configuration.
#include "rill/train/train_config.h"

#include <fstream>

#include "rill/io/json_fields.h"
#include "rill/io/json_file.h"

namespace rill {

using nlohmann::json;

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
  JsonFields f(j, "the training config");
  if (const json* t = f.raw("task")) {
    RILL_CHECK(t->is_object(), "[config] \"task\" must be an object, got {}", t->dump());
    c.task = *t;
  }
  if (const json* m = f.raw("model")) {
    RILL_CHECK(m->is_object(), "[config] \"model\" must be an object, got {}", m->dump());
    c.model = *m;
  }
  f.get("data_dir", c.data_dir);
  f.get("out_dir", c.out_dir);
  f.get("batch", c.batch);
  f.get("steps", c.steps);
  f.get("time_limit_s", c.time_limit_s);
  f.get("lr", c.lr);
  f.get("min_lr", c.min_lr);
  f.get("weight_decay", c.weight_decay);
  f.get("clip", c.clip);
  f.get("beta1", c.beta1);
  f.get("beta2", c.beta2);
  f.get("warmup", c.warmup);
  f.get("eval_every", c.eval_every);
  f.get("eval_batches", c.eval_batches);
  f.get("checkpoint_every", c.checkpoint_every);
  f.get("seed", c.seed);
  f.get("grad_shards", c.grad_shards);
  f.get("allreduce", c.allreduce);
  f.finish();
  c.validate();
  return c;
}

void TrainConfig::validate() const {
  const json none = json::object();
  JsonFields f(none, "the training config");
  f.check("batch", batch, batch > 0 && batch <= 65536, "between 1 and 65536");
  f.check("steps", steps, steps > 0 && steps <= 1'000'000'000, "between 1 and 1e9");
  f.check("time_limit_s", time_limit_s, time_limit_s >= 0, "0 (none) or positive");
  f.check("lr", lr, lr > 0 && lr < 10, "in (0, 10)");
  f.check("min_lr", min_lr, min_lr >= 0 && min_lr <= lr, "in [0, lr]");
  f.check("weight_decay", weight_decay, weight_decay >= 0, "0 or positive");
  f.check("clip", clip, clip >= 0, "0 (no clipping) or positive");
  f.check("beta1", beta1, beta1 >= 0 && beta1 < 1, "in [0, 1)");
  f.check("beta2", beta2, beta2 >= 0 && beta2 < 1, "in [0, 1)");
  f.check("warmup", warmup, warmup >= 0 && warmup < steps,
          fmt::format("in [0, steps) (steps is {})", steps).c_str());
  f.check("eval_every", eval_every, eval_every > 0, "positive");
  f.check("eval_batches", eval_batches, eval_batches >= 0, "0 (the whole split) or positive");
  f.check("checkpoint_every", checkpoint_every, checkpoint_every > 0, "positive");
  f.check("grad_shards", grad_shards,
          grad_shards == 0 || (grad_shards > 0 && batch % grad_shards == 0),
          fmt::format("0 (one per rank) or a divisor of batch (batch is {})", batch).c_str());
  RILL_CHECK(allreduce == "exact" || allreduce == "fast",
             "[config] the training config: \"allreduce\" must be \"exact\" or \"fast\", got "
             "\"{}\"",
             allreduce);
  RILL_CHECK(!data_dir.empty() && !out_dir.empty(),
             "[config] the training config: \"data_dir\" and \"out_dir\" must not be empty");
}

TrainConfig TrainConfig::from_file(const std::string& path) {
  return parse_json_file(path, "the training config", from_json);
}

json TrainConfig::to_json() const {
  return {{"task", task},
          {"model", model},
          {"data_dir", data_dir},
          {"out_dir", out_dir},
          {"batch", batch},
          {"steps", steps},
          {"time_limit_s", time_limit_s},
          {"lr", lr},
          {"min_lr", min_lr},
          {"weight_decay", weight_decay},
          {"clip", clip},
          {"beta1", beta1},
          {"beta2", beta2},
          {"warmup", warmup},
          {"eval_every", eval_every},
          {"eval_batches", eval_batches},
          {"checkpoint_every", checkpoint_every},
          {"seed", seed},
          {"grad_shards", grad_shards},
          {"allreduce", allreduce}};
}

}  // namespace rill
