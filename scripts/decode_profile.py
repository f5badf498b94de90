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

Usage: python3 scripts/decode_profile.py PROFILE.csv [--steps 2] [--by-grid] [--json]
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
    ap.add_argument("--by-grid", action="store_true", help="kernels of different launch grids apart")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = launches(a.profile)
    starts = step_starts(rows)
    if a.steps < 1:
        fail(f"--steps must be at least 1, got {a.steps}")
    if len(starts) < a.steps:
        fail(f"{len(starts)} passes found in {a.profile}, {a.steps} asked")
    bounds = starts[-a.steps:] + [len(rows)]
    us, count = collections.Counter(), collections.Counter()
    for b, e in zip(bounds, bounds[1:]):
        for name, grid, t in rows[b:e]:
            key = f"{short(name)} {grid}" if a.by_grid and grid else short(name)
            us[key] += t / a.steps
            count[key] += 1 / a.steps
    total = sum(us.values())
    table = [{"kernel": k, "launches": round(count[k], 2), "us": round(v, 1)} for k, v in us.most_common()]
    if a.json:
        print(json.dumps({"profile": a.profile, "steps": a.steps, "launches": round(sum(count.values()), 2),
                          "us": round(total, 1), "kernels": table}, indent=1))
        return
    print(f"{a.profile}: {sum(count.values()):.0f} launches, {total:.1f} us of device time a step "
          f"(mean of the last {a.steps})")
    print("| kernel | launches | us | share |\n|---|---:|---:|---:|")
    for r in table:
        print(f"| `{r['kernel']}` | {r['launches']:g} | {r['us']:.1f} | {r['us'] / total:.1%} |")


if __name__ == "__main__":
    main()
