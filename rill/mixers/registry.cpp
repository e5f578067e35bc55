#include "rill/mixers/registry.h"

#include <set>

#include "rill/mixers/linear_attention.h"
#include "rill/mixers/softmax_attention.h"

namespace rill {

using nlohmann::json;

namespace {

// Reads optional typed fields and refuses keys nobody read.
class Fields {
 public:
  Fields(const json& j, std::string type) : j_(j), type_(std::move(type)) {
    RILL_CHECK(j.is_object(), "[config] a mixer must be a JSON object, got {}", j.dump());
  }
  template <class T>
  void get(const char* key, T& out) {
    seen_.insert(key);
    if (!j_.contains(key)) return;
    try {
      out = j_.at(key).get<T>();
    } catch (const json::exception&) {
      fail("[config] mixer \"{}\": \"{}\" has the wrong type: {}", type_, key, j_.at(key).dump());
    }
  }
  void finish() const {
    for (const auto& [k, v] : j_.items())
      RILL_CHECK(k == "type" || seen_.count(k), "[config] mixer \"{}\": unknown key \"{}\"", type_,
                 k);
  }

 private:
  const json& j_;
  std::string type_;
  std::set<std::string> seen_;
};

}  // namespace

std::shared_ptr<Mixer> make_mixer(const json& config, int64_t d_model, uint64_t seed, DType dtype) {
  RILL_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
             "[config] a mixer needs a string \"type\", got {}", config.dump());
  const std::string type = config["type"];
  Fields f(config, type);
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
               "[config] mixer \"linear_attention\": form \"{}\" is not chunked or recurrent", form);
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
