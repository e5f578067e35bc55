// `rill serve` and `rill bench-serve`: their options and what they do (rill/serve/ has the
// server and the load generator).
#pragma once
#include <CLI/CLI.hpp>
#include <memory>

namespace rill::tools {

class ServeCommands {
 public:
  virtual ~ServeCommands() = default;
  // The command to run when one of them was parsed (its exit code), or -1.
  virtual int run_if_parsed() = 0;
};

std::unique_ptr<ServeCommands> add_serve_commands(CLI::App& app);

}  // namespace rill::tools
