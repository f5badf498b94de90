// cascade: the command-line front end. Each subcommand lives in tools/cli/cmd_<name>.cc and
// registers itself here; every cascade::Error becomes one line on stderr and exit code 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"cascade: exact and ADA token-selection inference for decoder-only transformers"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const cascade::Error& e) {
    std::fprintf(stderr, "cascade: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
