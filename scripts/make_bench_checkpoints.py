#!/usr/bin/env python3
"""Makes the benchmark checkpoints of scripts/bench_gpu_prefill.py (random weights, seed 0, fp16
safetensors in /tmp/bench-NAME) without timing anything, for runs that only need the files (decode
with and without CUDA graphs in scripts/device_gpu_engine.sh).

Usage: python3 scripts/make_bench_checkpoints.py [--big-layers 4]
"""
import argparse
import os
import sys

import torch
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gpu_prefill import shapes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-layers", type=int, default=4)
    a = ap.parse_args()
    for name, _, cfg in shapes(a.big_layers):
        ckpt = f"/tmp/bench-{name}"
        if os.path.exists(os.path.join(ckpt, "config.json")):
            continue
        with torch.device("cuda"):
            torch.manual_seed(0)
            m = AutoModelForCausalLM.from_config(cfg, dtype=torch.float16).eval()
        m.save_pretrained(ckpt, safe_serialization=True)
        print(ckpt, flush=True)
        del m
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
