// POPGym's difficulty levels (Morad et al. 2023, proroklab/popgym): every environment comes as
// Easy, Medium and Hard, which rill configs name {"difficulty": "easy" | "medium" | "hard"}
// (default "easy"). Each environment maps the level to its own sizes.
#pragma once
#include <cstdint>

#include "rill/io/json_fields.h"

namespace rill::rl {

// Reads "difficulty" from a config: 0 easy, 1 medium, 2 hard; anything else is refused naming
// the field and the three allowed values.
int64_t read_popgym_difficulty(JsonFields& f);
const char* popgym_difficulty_name(int64_t level);

}  // namespace rill::rl
