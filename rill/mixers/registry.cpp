// The mixer registry: a name -> spec map filled at static initialisation, and make_mixer.
#include "rill/mixers/registry.h"

#include "rill/core/registry.h"
#include "rill/mixers/local_context.h"

namespace rill {

namespace {

Registry<MixerSpec>& mixers() {
  static Registry<MixerSpec> r("mixer type");
  return r;
}

}  // namespace

MixerRegistration::MixerRegistration(MixerSpec spec) {
  std::string type = spec.type;
  mixers().add(type, std::move(spec));
}

std::vector<const MixerSpec*> registered_mixers() {
  std::vector<const MixerSpec*> out;
  for (const auto& [name, spec] : mixers().entries()) out.push_back(&spec);
  return out;
}

std::shared_ptr<Mixer> make_mixer(const nlohmann::json& config, int64_t d_model, uint64_t seed,
                                  DType dtype) {
  RILL_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
             "[config] a mixer needs a string \"type\" (one of: {}), got {}",
             fmt::join(mixers().names(), ", "), config.dump());
  const std::string type = config["type"];
  const MixerSpec& spec = mixers().get(type);
  RILL_CHECK(d_model > 0, "[config] mixer \"{}\": d_model must be positive, got {}", type, d_model);
  if (!config.contains("local")) return spec.build(config, d_model, seed, dtype);
  nlohmann::json inner = config;
  inner.erase("local");
  LocalContextConfig local = parse_local_context(config["local"], type);
  return std::make_shared<LocalContextMixer>(local, spec.build(inner, d_model, seed, dtype), seed,
                                             dtype);
}

}  // namespace rill
