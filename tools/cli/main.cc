// cascade: the command-line front end (tools/cli/run.cc; `python -m cascade` runs the same).
#include "cli.h"

int main(int argc, char** argv) { return cascade::cli::run(argc, argv); }
