#!/usr/bin/env python3
"""One forward pass from Python against the same forward from the command line, on the GPU.

Model.logits(ids) on T random ids (seeded) returns the [T, vocab] logits as a torch CUDA tensor; its
wall time (torch.cuda.synchronize() after it) is set against `cascade bench --prompt-tokens T
--gen-tokens 0 --all-logits` (the CLI's prefill of the same T tokens, run through `python -m cascade`,
the CLI linked into the package, computing every position's logits and leaving them on the device:
the same work). Both: one warm-up, then --reps repetitions, median reported. Also the end-to-end wall times of `python -m cascade logits` (process,
load, forward, .npy written) and of the same work in this process.

    python3 scripts/bench_python_logits.py --model SmolLM2-135M-Instruct.Q4_1.gguf --tokens 8192 --json out.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

import cascade


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--json", help="write the figures here too")
    a = ap.parse_args()

    m = cascade.load(a.model, device="cuda", dtype=a.dtype)
    ids = np.random.default_rng(0).integers(0, m.spec["vocab_size"], size=a.tokens, dtype=np.int32)
    times = []
    for r in range(a.reps + 1):
        t0 = time.perf_counter()
        out = m.logits(ids)
        torch.cuda.synchronize()
        if r:
            times.append(time.perf_counter() - t0)
        del out
    py_s = statistics.median(times)

    cli = [sys.executable, "-m", "cascade"]
    bench = subprocess.run(cli + ["bench", "--model", a.model, "--device", "cuda", "--dtype", a.dtype,
                                  "--prompt-tokens", str(a.tokens), "--gen-tokens", "0", "--reps", str(a.reps),
                                  "--all-logits", "--json"], check=True, capture_output=True, text=True)
    cli_s = json.loads(bench.stdout)["prefill_s_median"]

    with tempfile.TemporaryDirectory() as d:
        ids_path, out_path = os.path.join(d, "ids.npy"), os.path.join(d, "logits.npy")
        np.save(ids_path, ids)
        t0 = time.perf_counter()
        subprocess.run(cli + ["logits", "--model", a.model, "--device", "cuda", "--dtype", a.dtype, "--ids", ids_path,
                              "--out", out_path], check=True, capture_output=True)
        cli_e2e = time.perf_counter() - t0
        t0 = time.perf_counter()
        m2 = cascade.load(a.model, device="cuda", dtype=a.dtype)
        np.save(out_path, m2.logits(ids).cpu().numpy())
        py_e2e = time.perf_counter() - t0

    r = {"model": os.path.basename(a.model), "tokens": a.tokens, "dtype": a.dtype, "reps": a.reps,
         "python_logits_s_median": py_s, "python_logits_s_all": times, "cli_prefill_s_median": cli_s,
         "python_over_cli": py_s / cli_s, "cli_logits_end_to_end_s": cli_e2e, "python_end_to_end_s": py_e2e,
         "gpu": torch.cuda.get_device_name(0)}
    print(f"T = {a.tokens}, {a.dtype}: Model.logits {py_s * 1e3:.1f} ms, CLI prefill {cli_s * 1e3:.1f} ms "
          f"(python / cli = {py_s / cli_s:.3f}); end to end with .npy written: CLI {cli_e2e:.2f} s, Python {py_e2e:.2f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
