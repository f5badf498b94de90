// cascade's command line (cli.h). Each subcommand lives in tools/cli/cmd_<name>.cc; every
// cascade::Error (bad input: a file, an option, a token id) becomes one line on stderr and exit
// code 2, as do command-line parse errors.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cli.h"
#include "commands.h"
#include "core/build_info.h"
#include "core/error.h"

namespace cascade::cli {

int run(int argc, char** argv) {
  CLI::App app{"cascade: exact and ADA token-selection inference for decoder-only transformers.\n"
               "MODEL is a Hugging Face checkpoint directory (config.json + *.safetensors), a llama2.c .bin\n"
               "or a .gguf file.",
               "cascade"};
  app.require_subcommand(1);
  const std::string version = "cascade " + build_commit();
  app.set_version_flag("--version", version, "Print the commit this binary was built from and exit");
  add_generate(app);
  add_perplexity(app);
  add_logits(app);
  add_inspect(app);
  add_study(app);
  add_bench(app);
  // CLI11 answers a misspelt command with "A subcommand is required"; name the word and the commands.
  const auto is_command = [&](const std::string& w) {
    for (const CLI::App* sc : app.get_subcommands({}))
      if (sc->check_name(w)) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr, "cascade: error: unknown command '%s' (commands: generate, perplexity, logits, inspect, study, bench; --help)\n",
                 argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const cascade::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "cascade: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "cascade: error: out of memory\n");
    return 2;
  }
  return 0;
}

}  // namespace cascade::cli
