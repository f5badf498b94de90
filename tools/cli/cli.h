// The whole `cascade` command line as one function, so that the executable (main.cc) and the Python
// module (`python -m cascade`, python/src/cli_api.cc) run the same commands with the same help and
// exit codes.
#pragma once

namespace cascade::cli {

// Parses argv (argv[0] is not read: help names the program "cascade") and runs the command: 0 on
// success (and for --help), 2 for bad input (a parse error, a cascade::Error, out of memory), each
// reported as one line on stderr.
int run(int argc, char** argv);

}  // namespace cascade::cli
