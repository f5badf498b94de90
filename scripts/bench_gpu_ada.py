#!/usr/bin/env python3
"""GPU ADA benchmark (prefill and decode): ADA prefill against exact prefill on the same engine
(bench/ada_cuda_bench.cc, one process per checkpoint), at the representative fractions measured on
SmolLM2-135M (RESULTS.md, --select cascade: r/T 0.44 at T=512, 0.34 at T=1024, 0.22 at T=2048), for a
GPT-J-6B-shaped checkpoint (d 4096, 16 heads of 256, --big-layers layers) and a GPT-2-124M-shaped one,
both with random weights made on the device by transformers (scripts/bench_gpu_prefill.py's shapes(),
the same configs and seed), saved as fp16 safetensors. r/T is set by planting duplicate tokens in the
prompt (see bench/ada_cuda_bench.cc). Also times torch's causal SDPA alone at T and at r = f T (the
compressed attention's shape) on the same GPU, per layer.

Usage: python3 scripts/bench_gpu_ada.py --bench BUILD/bench/ada_cuda_bench --out OUT_DIR [--big-layers 4]
"""
import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gpu_prefill import median_ms, shapes  # noqa: E402

# name: (T:f cases, tau, extra runs as (select, queries, cases)). 2048:1.0 plants no duplicate (r = T):
# ADA's overhead alone; --select full at the same cases shows what the exact cascade saves in
# selection; --queries all runs every token's query (the planted repeats then drift apart: r/T as measured).
CASES = {"gpt2-124m": (["512:0.44", "1024:0.34"], "0.8", []),
         "gptj-6b": (["512:0.44", "1024:0.34", "2048:0.22", "2048:1.0"], "0.3",
                     [("full", "reps", ["1024:0.34", "2048:0.22"]), ("cascade", "all", ["1024:0.34", "2048:0.22"])])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--big-layers", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--gen", type=int, default=64)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for name, T, cfg in shapes(a.big_layers):
        if name not in CASES:
            continue
        cases, tau, extra = CASES[name]
        H = cfg.num_attention_heads if hasattr(cfg, "num_attention_heads") else cfg.n_head
        D = cfg.hidden_size // H
        for c in cases[:3]:  # SDPA alone, per layer, fp16: T x T and r x r
            t, f = int(c.split(":")[0]), float(c.split(":")[1])
            for n in (t, max(1, round(f * t))):
                q, k, v = (torch.randn(1, H, n, D, device="cuda", dtype=torch.float16) for _ in range(3))
                ms, _ = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), 20)
                r = {"engine": "sdpa", "model": name, "T": t, "n": n, "heads": H, "head_dim": D, "ms": ms}
                rows.append(r)
                print(json.dumps(r), flush=True)
        ckpt = f"/tmp/bench-{name}"
        if not os.path.exists(os.path.join(ckpt, "config.json")):
            with torch.device("cuda"):
                torch.manual_seed(0)
                m = AutoModelForCausalLM.from_config(cfg, dtype=torch.float16).eval()
            m.save_pretrained(ckpt, safe_serialization=True)
            del m
            torch.cuda.empty_cache()
        for sel, queries, cs in [("cascade", "reps", cases)] + extra:
            cmd = [a.bench, "--model", ckpt, "--dtype", "fp16", "--tau", tau, "--select", sel, "--queries", queries,
                   "--reps", str(a.reps), "--gen", str(a.gen)] + cs
            print(" ".join(cmd), flush=True)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
            sys.stderr.write(r.stderr[-3000:])
            for line in r.stdout.splitlines():
                if line.startswith("{"):
                    j = json.loads(line)
                    j["engine"] = "cascade"
                    j["model_name"] = name
                    rows.append(j)
                    print(json.dumps(j), flush=True)
    with open(os.path.join(a.out, "ada_bench.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
