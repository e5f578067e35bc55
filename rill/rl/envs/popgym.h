// POPGym's difficulty levels (Morad et al. 2023, proroklab/popgym): every environment comes as
// Easy, Medium and Hard, which rill configs name {"difficulty": "easy" | "medium" | "hard"}
// (default "easy"). Each environment maps the level to its own sizes.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

namespace rill::rl {

// Reads the settings of a POPGym environment (`type` names it in errors), which are only
// "difficulty": 0 easy, 1 medium, 2 hard; another value or another key is refused by name.
int64_t read_popgym_difficulty(const nlohmann::json& settings, const char* type);
const char* popgym_difficulty_name(int64_t level);

}  // namespace rill::rl
