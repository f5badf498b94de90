#!/usr/bin/env python3
"""Whole models on the GPU (BENCHMARKS.md "GPU: whole models"): exact prefill by Hugging Face
transformers (SDPA) and by Cascade, and Cascade's ADA prefill, at long prompts, in one run.

Models: Llama-3-8B's shape (32 layers), GPT-J-6B's (28) and OPT-6.7B's (32), full width and
vocabulary, random weights (transformers' own init, seed 0) made on the GPU and saved as bf16
safetensors in /tmp/bench-whole-NAME (kept for the next call while the machine stays warm). The
position tables (OPT's learned positions, the rotary models' context) are widened to the longest T.
At each T: HF's forward (use_cache=False, logits of the last position only) timed with CUDA events;
then `ada_cuda_bench` on the saved checkpoint (one process per attention kernel): Cascade's exact
prefill and ADA's (cascade selection, tau 0.3, --queries reps) on a prompt with planted repeats that
sets r/T (0.22 by default; exact on the same prompt: attention costs what it costs on any prompt).
OPT's learned positions make a repeat differ from its first occurrence, so its r/T is what the
selection finds (printed). A length that does not fit in memory shows as OOM.

One call of the GPU machine runs about ten minutes: --models and --lengths choose a part, and the
rows of earlier parts in OUT/models_bench.json are kept and printed with the new ones.

Usage: python3 scripts/bench_gpu_models.py --ada-bench B/bench/ada_cuda_bench --out OUT
         [--models llama-8b,gptj-6b,opt-6.7b] [--lengths 2048,8192,32768,131072] [--reps 3]
         [--fraction 0.22] [--kernels auto,cascade]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, GPTJConfig, LlamaConfig, OPTConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gpu_prefill import median_ms  # noqa: E402


def config(name, max_t):
    if name == "llama-8b":
        return LlamaConfig(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                           num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0,
                           max_position_embeddings=max(8192, max_t), tie_word_embeddings=False)
    if name == "gptj-6b":
        return GPTJConfig(n_layer=28, n_embd=4096, n_head=16, rotary_dim=64, n_positions=max(2048, max_t),
                          vocab_size=50400, tie_word_embeddings=False)
    if name == "opt-6.7b":
        return OPTConfig(num_hidden_layers=32, hidden_size=4096, ffn_dim=16384, num_attention_heads=32,
                         max_position_embeddings=max(2048, max_t), vocab_size=50272, word_embed_proj_dim=4096,
                         do_layer_norm_before=True)
    print(f"unknown model {name} (llama-8b, gptj-6b, opt-6.7b)", file=sys.stderr)
    raise SystemExit(2)


def positions_key(cfg):
    return "n_positions" if isinstance(cfg, GPTJConfig) else "max_position_embeddings"


def make_checkpoint(name, cfg, ckpt):
    """HF's model of the config with random weights (seed 0) on the GPU, saved as bf16 safetensors in ckpt
    where it is not there yet (or was saved for fewer positions)."""
    with torch.device("cuda"):
        torch.manual_seed(0)
        try:
            m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa").eval()
        except ValueError:  # a model class without SDPA (GPT-J in transformers 5) runs eager attention: the row says so
            torch.manual_seed(0)
            m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="eager").eval()
    # A checkpoint saved by an earlier call for shorter prompts has fewer positions (the engine refuses
    # a longer sequence; OPT's learned position table is smaller): it is made again.
    saved = os.path.join(ckpt, "config.json")
    if os.path.exists(saved) and json.load(open(saved)).get(positions_key(cfg)) != getattr(cfg, positions_key(cfg)):
        shutil.rmtree(ckpt)
    if not os.path.exists(saved):
        t0 = time.time()
        m.save_pretrained(ckpt, safe_serialization=True)
        print(f"{name}: saved {ckpt} in {time.time() - t0:.0f} s", flush=True)
    return m


def hf_rows(name, cfg, ckpt, lengths, reps):
    """Makes (or finds) the checkpoint and times HF's prefill at each length."""
    m = make_checkpoint(name, cfg, ckpt)
    rows = []
    for T in lengths:
        ids = torch.randint(0, cfg.vocab_size, (1, T), device="cuda", generator=torch.Generator("cuda").manual_seed(T))
        row = {"model": name, "T": T, "engine": "hf", "attn": m.config._attn_implementation}
        try:
            with torch.inference_mode():
                row["prefill_ms"] = median_ms(lambda: m(ids, use_cache=False, logits_to_keep=1), reps, warm=1)[0]
        except torch.cuda.OutOfMemoryError:
            row["error"] = "OOM"
        torch.cuda.empty_cache()
        rows.append(row)
        print(json.dumps(row), flush=True)
    del m
    torch.cuda.empty_cache()
    return rows


def cascade_rows(name, ckpt, lengths, reps, fraction, kernel, bench):
    cmd = [bench, "--model", ckpt, "--dtype", "bf16", "--tau", "0.3", "--select", "cascade", "--queries", "reps",
           "--reps", str(reps), "--gen", "0", "--attention-kernel", kernel] + [f"{T}:{fraction}" for T in lengths]
    print(" ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    rows = []
    for line in r.stdout.splitlines():
        if line.startswith("{") and '"T"' in line:
            j = json.loads(line)
            row = {"model": name, "T": j["T"], "engine": "cascade", "kernel": kernel, "f": j["f"]}
            ex, ada = j["exact"], j["ada"]  # a method that failed at this length holds only its "error"
            if "error" in ex:
                row["error"] = "exact: " + ex["error"]
            else:
                row.update(exact_ms=ex["prefill_ms"], exact_attention_ms=ex["attention_ms"])
            if "error" in ada:
                row["ada_error"] = ada["error"]
            else:
                row.update(ada_ms=ada["prefill_ms"], ada_selection_ms=ada["selection_ms"], ada_attention_ms=ada["attention_ms"],
                           r_over_T=sum(ada["r_over_T"]) / len(ada["r_over_T"]))
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
    if r.returncode != 0:
        rows.append({"model": name, "engine": "cascade", "kernel": kernel, "error": r.stderr[-2000:]})
        print(r.stderr[-2000:], flush=True)
    return rows


def print_table(rows):
    print("| model | T | HF SDPA ms | Cascade exact ms (auto) | exact ms (own kernel) | ADA ms | ADA selection ms | r/T |"
          " HF / exact | exact / ADA |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted({(r["model"], r["T"]) for r in rows if "T" in r}, key=lambda k: (k[0], k[1]))
    for model, T in keys:
        at = [r for r in rows if r.get("model") == model and r.get("T") == T]
        hf = next((r for r in at if r["engine"] == "hf"), {})
        auto = next((r for r in at if r["engine"] == "cascade" and r["kernel"] == "auto"), {})
        own = next((r for r in at if r["engine"] == "cascade" and r["kernel"] == "cascade"), {})

        def f(r, k, fmt="{:.1f}", err="error"):  # a failed cell says why, out of memory as OOM
            if k in r:
                return fmt.format(r[k])
            why = r.get(err, "-")
            return "OOM" if "out of memory" in why or why == "OOM" else why

        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
        print(f"| {model} | {T} | {f(hf, 'prefill_ms')} | {f(auto, 'exact_ms')} | {f(own, 'exact_ms')} | {f(auto, 'ada_ms', err='ada_error')} |"
              f" {f(auto, 'ada_selection_ms', err='ada_error')} | {f(auto, 'r_over_T', '{:.3f}', 'ada_error')} |"
              f" {ratio(hf.get('prefill_ms'), auto.get('exact_ms'))} | {ratio(auto.get('exact_ms'), auto.get('ada_ms'))} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ada-bench", required=True, help="bench/ada_cuda_bench of a CUDA build")
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="llama-8b,gptj-6b,opt-6.7b")
    ap.add_argument("--lengths", default="2048,8192,32768,131072")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=0.22, help="ADA's planted r/T")
    ap.add_argument("--kernels", default="auto,cascade", help="Cascade's exact attention kernels to time")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu_models.py: no GPU")
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "models_bench.json")
    rows = json.load(open(path))["rows"] if os.path.exists(path) else []
    lengths = [int(x) for x in a.lengths.split(",")]
    for name in a.models.split(","):
        cfg = config(name, max(lengths))
        ckpt = f"/tmp/bench-whole-{name}"
        new = hf_rows(name, cfg, ckpt, lengths, a.reps)
        for kernel in a.kernels.split(","):
            new += cascade_rows(name, ckpt, lengths, a.reps, a.fraction, kernel, a.ada_bench)
        done = {(r["model"], r.get("T"), r["engine"], r.get("kernel")) for r in new}
        rows = [r for r in rows if (r["model"], r.get("T"), r["engine"], r.get("kernel")) not in done] + new
        meta = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "transformers": transformers.__version__,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with open(path, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print_table(rows)


if __name__ == "__main__":
    main()
