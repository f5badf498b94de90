#!/usr/bin/env python3
"""Host memory and time of loading a GPT-J-6B-shaped bf16 checkpoint onto the GPU.

Makes /tmp/bench-gptj6b-bf16 if absent (random weights, seed 0, GPT-J-6B's shape: 28 layers,
d_model 4096, 16 heads, rotary_dim 64, vocabulary 50400; bf16 safetensors shards, about 12 GB),
then runs `cascade logits --device cuda --dtype bf16` on a few ids --reps times and prints, as JSON,
each run's wall time and the peak resident set of that cascade process (os.wait4's ru_maxrss).
The first run after the file was written reads it from the page cache; drop the cache
(`sync; echo 3 > /proc/sys/vm/drop_caches`, as root) before a run to time a cold read.

Usage: python3 scripts/measure_gpu_load.py [--cascade build/cascade] [--reps 3] [--dtype bf16]
Needs torch and transformers (and a GPU) only to make the checkpoint.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CKPT = "/tmp/bench-gptj6b-bf16"


def make_checkpoint(path):
    import torch
    from transformers import AutoModelForCausalLM, GPTJConfig

    cfg = GPTJConfig(vocab_size=50400, n_positions=2048, n_embd=4096, n_layer=28, n_head=16, rotary_dim=64,
                     n_inner=None, activation_function="gelu_new", tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).eval()
    m.save_pretrained(path, safe_serialization=True)
    del m


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def run_once(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = p.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    run = {"wall_s": round(wall, 3), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
           "major_faults": usage.ru_majflt, "exit_code": code}
    if code != 0:
        run["stderr"] = stderr[-2000:]
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cascade", default="build/cascade")
    ap.add_argument("--checkpoint", default=CKPT)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.checkpoint, "config.json")):
        t0 = time.perf_counter()
        make_checkpoint(a.checkpoint)
        print(f"made {a.checkpoint} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        ids = os.path.join(tmp, "ids.npy")
        np.save(ids, np.array([50, 3290, 318, 257, 1332, 286, 262, 6801], dtype=np.int32))
        cmd = [a.cascade, "logits", "--model", a.checkpoint, "--ids", ids, "--out", os.path.join(tmp, "logits.npy"),
               "--device", "cuda", "--dtype", a.dtype]
        runs = [run_once(cmd) for _ in range(a.reps)]
    print(json.dumps({"checkpoint": a.checkpoint, "checkpoint_bytes": dir_bytes(a.checkpoint), "dtype": a.dtype,
                      "command": " ".join(cmd), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
