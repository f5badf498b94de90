#!/usr/bin/env python3
"""One decoding step's kernels, from an ncu log of `cascade bench --cuda-graphs off`.

Reads the CSV that scripts/device_gpu_suite.sh PART=profile writes (ncu --csv --page raw, one row a
launch with its gpu__time_duration.sum) and splits the launches into forward passes: a pass begins
with the token embedding's gather_kernel followed by a norm_kernel (ADA's own gathers inside a pass
are not followed by one). The last --steps passes are the
decoding steps averaged (the run's last tokens, after the prefill). Prints, per kernel name (with
--by-grid, per kernel name and launch grid: the GEMVs of different shapes apart), launches and device
microseconds a step (ncu runs each kernel at its locked base clock, so the sum is above the step's time
with graphs; the shares are what it is for), as a table or --json.

--pass I sums one pass instead (Python's index: 0 the first, -1 the last), such as a prefill (the passes'
device times are printed, the prefill's the largest; `cascade bench` runs a warm-up before its timed run).

Usage: python3 scripts/decode_profile.py PROFILE.csv [--steps 2 | --pass I] [--by-grid] [--json]
"""
import argparse
import collections
import csv
import json
import re
import sys


def fail(message):  # bad input: one line on stderr, exit code 2 (the engine's convention)
    print(f"decode_profile.py: {message}", file=sys.stderr)
    sys.exit(2)


def launches(path):
    try:
        with open(path) as f:
            lines = [line for line in f if not line.startswith("==")]  # ncu's own messages
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    out = []
    for row in csv.DictReader(lines):
        try:
            if not row["ID"].isdigit():  # the units row
                continue
            out.append((row["Kernel Name"], row.get("Grid Size") or "",
                        float(row["gpu__time_duration.sum"].replace(",", "")) / 1e3))
        except (KeyError, AttributeError, ValueError):
            fail(f"{path} is not ncu's raw CSV with gpu__time_duration.sum (ncu --csv --page raw --metrics ...)")
    return out


def short(name):  # the kernel's own name: ncu spells the namespaces differently from run to run
    name = name.replace("(anonymous namespace)::", "").replace("<unnamed>::", "").replace("void ", "")
    return re.sub(r"\(.*", "", re.sub(r"<.*", "", name)).split("::")[-1]


def step_starts(rows):
    return [i for i in range(len(rows) - 1)
            if short(rows[i][0]).endswith("gather_kernel") and short(rows[i + 1][0]).endswith("norm_kernel")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--steps", type=int, default=2, help="the last N passes (decoding steps) averaged")
    ap.add_argument("--pass", type=int, dest="one", metavar="I", help="pass I alone (0 the first, -1 the last)")
    ap.add_argument("--by-grid", action="store_true", help="kernels of different launch grids apart")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = launches(a.profile)
    starts = step_starts(rows)
    ends = starts[1:] + [len(rows)]
    if a.steps < 1:
        fail(f"--steps must be at least 1, got {a.steps}")
    if a.one is None and len(starts) < a.steps:
        fail(f"{len(starts)} passes found in {a.profile}, {a.steps} asked")
    if a.one is not None and not -len(starts) <= a.one < len(starts):
        fail(f"{len(starts)} passes found in {a.profile}, pass {a.one} asked")
    chosen = [a.one % len(starts)] if a.one is not None else list(range(len(starts) - a.steps, len(starts)))
    us, count = collections.Counter(), collections.Counter()
    for i in chosen:
        for name, grid, t in rows[starts[i]:ends[i]]:
            key = f"{short(name)} {grid}" if a.by_grid and grid else short(name)
            us[key] += t / len(chosen)
            count[key] += 1 / len(chosen)
    total = sum(us.values())
    table = [{"kernel": k, "launches": round(count[k], 2), "us": round(v, 1)} for k, v in us.most_common()]
    passes_us = [round(sum(t for _, _, t in rows[b:e]), 1) for b, e in zip(starts, ends)]
    if a.json:
        print(json.dumps({"profile": a.profile, "steps": len(chosen), "passes": chosen, "passes_us": passes_us,
                          "launches": round(sum(count.values()), 2), "us": round(total, 1), "kernels": table}, indent=1))
        return
    which = f"pass {a.one}" if a.one is not None else f"mean of the last {a.steps}"
    print(f"{a.profile}: {sum(count.values()):.0f} launches, {total:.1f} us of device time a pass ({which}; "
          f"the {len(starts)} passes' us: {', '.join(f'{x:g}' for x in passes_us)})")
    print("| kernel | launches | us | share |\n|---|---:|---:|---:|")
    for r in table:
        print(f"| `{r['kernel']}` | {r['launches']:g} | {r['us']:.1f} | {r['us'] / total:.1%} |")


if __name__ == "__main__":
    main()
