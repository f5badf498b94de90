// The subcommands of `cascade`; each file tools/cli/cmd_<name>.cc adds one to the app.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace cascade::cli {

// The whole of a text file (perplexity, study); cascade::Error naming it when unreadable.
std::string read_text_file(const std::string& path);

void add_generate(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_logits(CLI::App& app);
void add_inspect(CLI::App& app);
void add_study(CLI::App& app);
void add_bench(CLI::App& app);

}  // namespace cascade::cli
