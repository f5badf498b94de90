// The subcommands of `cascade`; each file tools/cli/cmd_<name>.cc adds one to the app.
#pragma once
#include <CLI/CLI.hpp>

namespace cascade::cli {

void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_logits(CLI::App& app);
void add_inspect(CLI::App& app);
void add_study(CLI::App& app);
void add_bench(CLI::App& app);

}  // namespace cascade::cli
