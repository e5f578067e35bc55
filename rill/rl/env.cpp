// The environment registry and the per-episode random source (see env.h).
#include "rill/rl/env.h"

#include <map>

#include "rill/core/error.h"
#include "rill/core/rng.h"

namespace rill::rl {

uint64_t episode_key(uint64_t seed, uint64_t episode) {
  // A Philox block of (seed, episode) as the key: episodes of one stream, and the streams of
  // neighbouring seeds, are unrelated.
  const auto r = philox4x32(seed ^ 0x5eedc0de9e3779b9ULL, episode);
  return (uint64_t(r[0]) << 32) | r[1];
}

uint32_t EpisodeRng::next() { return philox4x32(key, counter++)[0]; }

int64_t EpisodeRng::below(int64_t n) {
  RILL_CHECK(n > 0, "[env] a draw below {} (it must be positive)", n);
  // 64 bits reduced modulo n: the bias is below n / 2^64, nothing at these sizes.
  const auto r = philox4x32(key, counter++);
  const uint64_t x = (uint64_t(r[0]) << 32) | r[1];
  return int64_t(x % uint64_t(n));
}

nlohmann::json EpisodeRng::save() const { return {{"key", key}, {"counter", counter}}; }

void EpisodeRng::load(const nlohmann::json& j) {
  RILL_CHECK(j.is_object() && j.contains("key") && j.contains("counter") &&
                 j["key"].is_number_unsigned() && j["counter"].is_number_unsigned(),
             "[env] a saved random source must be {{\"key\": N, \"counter\": N}}, got {}",
             j.dump());
  key = j["key"].get<uint64_t>();
  counter = j["counter"].get<uint64_t>();
}

namespace {
std::map<std::string, EnvFactory>& env_registry() {
  static std::map<std::string, EnvFactory> r;
  return r;
}
}  // namespace

EnvRegistration::EnvRegistration(const std::string& type, EnvFactory factory) {
  env_registry()[type] = std::move(factory);
}

std::vector<std::string> registered_envs() {
  std::vector<std::string> names;
  for (const auto& [name, f] : env_registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Env> make_env(const nlohmann::json& config) {
  RILL_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
             "[config] an environment config needs a \"type\" (one of {}), got {}",
             fmt::join(registered_envs(), ", "), config.dump());
  const std::string type = config["type"].get<std::string>();
  auto it = env_registry().find(type);
  RILL_CHECK(it != env_registry().end(), "[config] unknown environment \"{}\" (known: {})", type,
             fmt::join(registered_envs(), ", "));
  nlohmann::json settings = config;  // a factory reads its settings; the type chose it
  settings.erase("type");
  return it->second(settings);
}

}  // namespace rill::rl
