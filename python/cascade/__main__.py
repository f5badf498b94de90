"""`python -m cascade ARGS`: the `cascade` command line (tools/cli, compiled into the extension), with
its help, output and exit codes (2 for bad input), so a pip-installed package needs no other binary."""

import signal
import sys

from . import _cascade


def main():
    sys.stdout.flush()
    # The engine does not poll Python's handler during a command: Ctrl-C ends the process, as it
    # ends the executable.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _cascade.cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
