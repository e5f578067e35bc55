// The page `rill serve` shows at /: a prompt box, the text streaming in, tokens/s and the state
// size, fork and reset. One self-contained HTML document (no scripts from elsewhere).
#pragma once
#include <string>

namespace rill::serve {

const std::string& page_html();

}  // namespace rill::serve
