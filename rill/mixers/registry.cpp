#include "rill/mixers/registry.h"

#include "rill/io/json_fields.h"
#include "rill/mixers/linear_attention.h"
#include "rill/mixers/softmax_attention.h"

namespace rill {

using nlohmann::json;

std::shared_ptr<Mixer> make_mixer(const json& config, int64_t d_model, uint64_t seed, DType dtype) {
  RILL_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
             "[config] a mixer needs a string \"type\", got {}", config.dump());
  const std::string type = config["type"];
  JsonFields f(config, fmt::format("mixer \"{}\"", type));
  f.ignore("type");
  if (type == "linear_attention") {
    LinearAttentionConfig c;
    c.d_model = d_model, c.seed = seed, c.dtype = dtype;
    std::string feature = "elu1", form = "chunked";
    f.get("heads", c.heads);
    f.get("head_dim", c.head_dim);
    f.get("feature_map", feature);
    f.get("normalize", c.normalize);
    f.get("eps", c.eps);
    f.get("form", form);
    f.get("chunk", c.chunk);
    f.get("causal", c.causal);
    f.finish();
    c.feature_map = parse_feature_map(feature);
    RILL_CHECK(form == "chunked" || form == "recurrent",
               "[config] mixer \"linear_attention\": form \"{}\" is not chunked or recurrent",
               form);
    c.form = form == "chunked" ? LinearAttentionForm::chunked : LinearAttentionForm::recurrent;
    return std::make_shared<LinearAttentionMixer>(c);
  }
  if (type == "softmax_attention") {
    SoftmaxAttentionConfig c;
    c.d_model = d_model, c.seed = seed, c.dtype = dtype;
    std::string positions = "rotary", step_mode = "kv_cache";
    f.get("heads", c.heads);
    f.get("head_dim", c.head_dim);
    f.get("positions", positions);
    f.get("rotary_base", c.rotary_base);
    f.get("num_buckets", c.num_buckets);
    f.get("max_distance", c.max_distance);
    f.get("window", c.window);
    f.get("step_mode", step_mode);
    f.finish();
    c.positions = parse_position_kind(positions);
    c.step_mode = parse_step_mode(step_mode);
    return std::make_shared<SoftmaxAttentionMixer>(c);
  }
  fail("[config] unknown mixer type \"{}\" (linear_attention, softmax_attention)", type);
}

}  // namespace rill
