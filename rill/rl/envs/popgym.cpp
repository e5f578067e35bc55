// POPGym's difficulty levels (see popgym.h).
#include "rill/rl/envs/popgym.h"

#include <string>

#include "rill/io/json_fields.h"

namespace rill::rl {

int64_t read_popgym_difficulty(const nlohmann::json& settings, const char* type) {
  JsonFields f(settings, fmt::format("the {} environment", type));
  std::string d = "easy";
  f.get("difficulty", d);
  const int64_t level = d == "easy" ? 0 : d == "medium" ? 1 : d == "hard" ? 2 : -1;
  f.check("difficulty", d, level >= 0, "\"easy\", \"medium\" or \"hard\"");
  f.finish();
  return level;
}

const char* popgym_difficulty_name(int64_t level) {
  return level == 0 ? "easy" : level == 1 ? "medium" : "hard";
}

}  // namespace rill::rl
