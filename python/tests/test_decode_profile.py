"""scripts/decode_profile.py (the repository's tool for ncu's log of a decoding step): how it splits
the launches into passes and sums the last ones (or one chosen) by kernel, on a hand-made log, and its exit code 2
with one message for bad input."""

import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "decode_profile.py"

HEADER = '"ID","Process ID","Kernel Name","Context","gpu__time_duration.sum"\n'
UNITS = '"","","","","nsecond"\n'


def _log(tmp_path, passes):
    """ncu --csv --page raw: its own messages, the header, the units row, one row a launch (us)."""
    rows, i = [], 0
    for kernels in passes:
        for name, us in kernels:
            rows.append(f'"{i}","1","{name}","1","{us * 1000:,.0f}"\n')
            i += 1
    p = tmp_path / "profile.csv"
    p.write_text("==PROF== Connected to process 1\n" + HEADER + UNITS + "".join(rows))
    return p


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_sums_the_last_passes_by_kernel(tmp_path):
    prefill = [("void cascade::ops::gather_kernel<float>(int)", 1), ("void ops::norm_kernel<float, 1>(float *)", 2),
               ("void cascade::ops::gather_kernel<float>(int)", 50),  # ADA's own gather: not a pass's start
               ("nvjet_sm90_tst_64x8", 1000)]
    step = [("void cascade::ops::gather_kernel<float>(int)", 1), ("void (anonymous namespace)::norm_kernel<float, 1>(float *)", 2),
            ("nvjet_sm90_tst_64x8", 10), ("void cascade::ops::gather_kernel<float>(int)", 1),  # inside the step
            ("void attn::split_kernel<float, 2>(attn::Params)", 4)]
    last = [(n, 2 * us) for n, us in step]  # the last step costs twice the one before
    r = _run(_log(tmp_path, [prefill, step, last]), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["launches"] == 5 and out["us"] == 27.0  # (18 + 36) / 2
    by = {k["kernel"]: (k["launches"], k["us"]) for k in out["kernels"]}
    assert by == {"gather_kernel": (2, 3.0), "norm_kernel": (1, 3.0), "nvjet_sm90_tst_64x8": (1, 15.0),
                  "split_kernel": (1, 6.0)}
    one = json.loads(_run(_log(tmp_path, [prefill, step, last]), "--json", "--steps", "1").stdout)
    assert one["us"] == 36.0
    table = _run(_log(tmp_path, [prefill, step, last]))
    assert table.returncode == 0 and "| `nvjet_sm90_tst_64x8` | 1 | 15.0 | 55.6% |" in table.stdout


def test_one_pass_such_as_the_prefill(tmp_path):
    """--pass I sums pass I alone (0 the first: here the prefill, with ADA's own gather inside it); the
    passes' device times come with it, and a pass that is not there is bad input."""
    prefill = [("void cascade::ops::gather_kernel<float>(int)", 1), ("void ops::norm_kernel<float, 1>(float *)", 2),
               ("void cascade::ops::gather_kernel<float>(int)", 50), ("nvjet_sm90_tst_64x8", 1000)]
    step = [("void cascade::ops::gather_kernel<float>(int)", 1), ("void ops::norm_kernel<float, 1>(float *)", 2),
            ("nvjet_sm90_tst_64x8", 10)]
    log = _log(tmp_path, [prefill, step, step])
    first = json.loads(_run(log, "--json", "--pass", "0").stdout)
    assert first["us"] == 1053.0 and first["passes"] == [0] and first["passes_us"] == [1053.0, 13.0, 13.0]
    assert {k["kernel"]: k["launches"] for k in first["kernels"]} == {"gather_kernel": 2, "norm_kernel": 1,
                                                                      "nvjet_sm90_tst_64x8": 1}
    assert json.loads(_run(log, "--json", "--pass", "-1").stdout)["us"] == 13.0
    table = _run(log, "--pass", "0")
    assert table.returncode == 0 and "pass 0; the 3 passes' us: 1053, 13, 13" in table.stdout
    for bad in ("3", "-4"):
        r = _run(log, "--pass", bad)
        assert r.returncode == 2 and "3 passes found" in r.stderr and "Traceback" not in r.stderr


def test_grids_split_a_kernel(tmp_path):
    """--by-grid keeps two GEMV shapes apart; without it they are one kernel."""
    head = '"ID","Process ID","Kernel Name","Grid Size","gpu__time_duration.sum"\n' + '"","","","","nsecond"\n'
    rows, i = [], 0
    for _ in range(2):
        for name, grid, us in [("void cascade::<unnamed>::gather_kernel<__nv_bfloat16>(int)", "(16, 1, 1)", 1),
                               ("void cascade::<unnamed>::norm_kernel<__nv_bfloat16, 1, 8>(T1 *)", "(1, 1, 1)", 3),
                               ("nvjet_sm90_tst_64x8", "(4, 24, 1)", 20), ("nvjet_sm90_tst_64x8", "(2, 66, 1)", 40)]:
            rows.append(f'"{i}","1","{name}","{grid}","{us * 1000:,.0f}"\n')
            i += 1
    p = tmp_path / "grid.csv"
    p.write_text(head + "".join(rows))
    plain = json.loads(_run(p, "--json", "--steps", "2").stdout)
    assert plain["launches"] == 4 and {k["kernel"]: k["us"] for k in plain["kernels"]}["nvjet_sm90_tst_64x8"] == 60.0
    grid = json.loads(_run(p, "--json", "--steps", "2", "--by-grid").stdout)
    by = {k["kernel"]: k["us"] for k in grid["kernels"]}
    assert by["nvjet_sm90_tst_64x8 (4, 24, 1)"] == 20.0 and by["nvjet_sm90_tst_64x8 (2, 66, 1)"] == 40.0
    assert by["norm_kernel (1, 1, 1)"] == 3.0


def test_bad_input_exits_2(tmp_path):
    missing = _run(tmp_path / "none.csv")
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    other = tmp_path / "other.csv"
    other.write_text('"a","b"\n"1","2"\n')
    r = _run(other)
    assert r.returncode == 2 and "not ncu's raw CSV" in r.stderr and "Traceback" not in r.stderr
    log = _log(tmp_path, [[("void cascade::ops::gather_kernel<float>(int)", 1), ("void ops::norm_kernel<float, 1>(float *)", 2)]])
    few = _run(log, "--steps", "2")
    assert few.returncode == 2 and "1 passes found" in few.stderr
    zero = _run(log, "--steps", "0")
    assert zero.returncode == 2 and "--steps must be at least 1" in zero.stderr
