// Runs the cascade binary in a shell and captures its exit code and combined output.
#pragma once
#include <string>

namespace cascade::test {

struct CliResult {
  int code = -1;
  std::string output;  // stdout and stderr together
};

// args: the command line after the binary name (already shell-quoted where needed).
CliResult run_cli(const std::string& args);
// Any shell command line, run the same way.
CliResult run_command(const std::string& cmd);

}  // namespace cascade::test
