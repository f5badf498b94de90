#!/usr/bin/env python3
"""One table of causal attention TFLOP/s per backend from device_run.sh's outputs in DIR: the engine's
kernel and the engine's cuDNN path (cascade.json, Google Benchmark's JSON of BM_attention_grid: columns
cascade and cascade-cudnn), cuDNN through the standalone cudnn-frontend probe
(cudnn.jsonl), FlashInfer's Hopper kernel (flashinfer.jsonl) and PyTorch's SDPA backends (torch.jsonl). A backend that refused a shape or failed its
accuracy check shows as '-' or 'bad'. Usage: python3 table.py DIR"""
import json
import os
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip().startswith("{")]


def main(d):
    rate = {}  # (T, hd, dtype) -> {backend: text}
    order = ["cascade", "cascade-cudnn"]
    cascade = os.path.join(d, "cascade.json")
    if os.path.exists(cascade):
        with open(cascade) as f:
            for b in json.load(f)["benchmarks"]:
                # name: BM_attention_grid/T/hd/bf16/kernel/iterations:20/manual_time
                _, T, hd, bf16, kernel = b["name"].split("/")[:5]
                key = (int(T), int(hd), "bf16" if bf16 == "1" else "f16")
                column = "cascade-cudnn" if kernel == "1" else "cascade"
                rate.setdefault(key, {})[column] = f"{b['TFLOP/s']:.0f}" if "TFLOP/s" in b else b.get("error_message", "-")
    for row in [r for f in ("cudnn", "flashinfer", "torch") for r in lines(os.path.join(d, f + ".jsonl"))]:
        if "backend" not in row:
            continue
        if row["backend"] not in order:
            order.append(row["backend"])
        key = (row["T"], row["head_dim"], row["dtype"])
        text = "-" if "error" in row else f"{row['tflops']:.0f}" if row["ok"] else f"bad ({row['rel_error']:.1e})"
        rate.setdefault(key, {})[row["backend"]] = text
    print("| T | head | dtype | " + " | ".join(order) + " |")
    print("|---:|---:|---|" + "---:|" * len(order))
    for key in sorted(rate):
        print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(rate[key].get(b, "-") for b in order) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
