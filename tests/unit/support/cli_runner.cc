#include "support/cli_runner.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "support/test_paths.h"

namespace cascade::test {

CliResult run_cli(const std::string& args) { return run_command(cli_path() + " " + args); }

CliResult run_command(const std::string& cmd) {
  CliResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace cascade::test
