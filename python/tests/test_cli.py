"""`python -m cascade`: the `cascade` command line inside the package, with the executable's help,
output and exit codes (0, and 2 for bad input)."""

import subprocess
import sys

import numpy as np
from conftest import STORIES
from test_model import _cli


def _module(*args):
    return subprocess.run([sys.executable, "-m", "cascade", *map(str, args)], capture_output=True, text=True)


def test_help_is_the_cli_help():
    r = _module("--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("cascade: exact and ADA token-selection inference")
    for command in ["generate", "perplexity", "logits", "inspect", "study", "bench"]:
        assert f"\n  {command} " in r.stdout
    cli = _cli()  # the executable built beside this checkout, when there is one
    if cli is not None:
        exe = subprocess.run([cli, "--help"], capture_output=True, text=True)
        assert (exe.returncode, exe.stdout) == (0, r.stdout)
    sub = _module("logits", "--help")
    assert sub.returncode == 0 and "--kv-budget" in sub.stdout and "--cuda-graphs" in sub.stdout


def test_bad_input_exits_2():
    r = _module("logits", "--model", STORIES, "--ids", "ids.npy", "--out", "out.npy", "--no-such-flag")
    assert r.returncode == 2 and "--no-such-flag" in r.stderr and r.stdout == ""
    r = _module("generat")
    assert r.returncode == 2 and r.stderr.startswith("cascade: error: unknown command 'generat'")
    r = _module("generate", "--model", STORIES, "--prompt", "x", "--tau", "1.5", "--attention", "ada")
    assert r.returncode == 2 and r.stderr.startswith("cascade: error: ") and "tau" in r.stderr


def test_logits_command_equals_model_logits(stories, tmp_path):
    ids = np.array([1, 403, 407, 261, 378, 32, 9], dtype=np.int32)
    np.save(tmp_path / "ids.npy", ids)
    r = _module("logits", "--model", STORIES, "--ids", tmp_path / "ids.npy", "--out", tmp_path / "out.npy",
                "--attention", "ada", "--tau", "0.3")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), stories.logits(ids, attention="ada", tau=0.3))
