#!/usr/bin/env python3
"""Decoding at the memory bound (BENCHMARKS.md "GPU: decoding at the memory bound"): tokens/s of
Cascade's exact and ADA decoding, and of HF transformers', on a whole model, against the bound that
the GPU's memory bandwidth sets.

A decoding step reads every weight matrix once (of the embedding and position tables only a row, unless
the head shares the embedding table) and every layer's K/V cache; ADA reads instead its representatives'
K/V and its decoding selector's rows (r x d in the compute dtype, with 16 bytes of float64 statistics
each, all read by each step's correlations). The bound is those bytes over the bandwidth measured here (torch's read of a 4 GiB
tensor, a sum; its copy is printed beside it). Cascade's exact decoding runs through `cascade bench`
(CUDA graphs on and off, random prompt ids); exact and ADA together through `ada_cuda_bench --gen`
(graphs off, then on; the planted prompt of bench_gpu_models.py, r/T = --fraction); HF's through its KV cache,
one token a forward. The checkpoint is bench_gpu_models.py's (/tmp/bench-whole-NAME, made if missing).

Usage: python3 scripts/bench_gpu_decode.py --cascade B/cascade --ada-bench B/bench/ada_cuda_bench --out OUT
         [--model llama-8b] [--prompts 2048,16384] [--gen 32] [--reps 3] [--fraction 0.22] [--skip-hf]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def weights_read(numels, d, embed, positions=None, head_tied=False):
    """Elements a decoding step reads of a model whose parameters have the given sizes (name -> numel,
    a shared tensor once), model width d: every parameter but the embedding table, of which the lookup
    reads one row (and the head all of it when it shares the table), and the position table (one row)."""
    read = sum(numels.values()) - numels[embed] + d + (numels[embed] if head_tied else 0)
    if positions:
        read -= numels[positions] - d
    return read


def step_bytes(weight_bytes, layers, kd, d, t, r=None, es=2):
    """Bytes one decoding step reads at context length t: the weights, then every layer's K/V (exact)
    or, with r representatives, their K/V and the selector's rows with their statistics (ADA)."""
    if r is None:
        return weight_bytes + layers * t * 2 * kd * es
    return weight_bytes + layers * r * (2 * kd * es + d * es + 16)


def hbm_bandwidth():
    """GB/s of a 4 GiB read (a sum) and of a 4 GiB copy (read + write), medians of 10."""
    import torch
    from bench_gpu_prefill import median_ms
    n = 4 << 30
    x = torch.ones(n // 2, dtype=torch.bfloat16, device="cuda")
    y = torch.empty_like(x)
    read_ms = median_ms(lambda: x.sum(dtype=torch.float32), 10, warm=2)[0]
    copy_ms = median_ms(lambda: y.copy_(x), 10, warm=2)[0]
    del x, y
    torch.cuda.empty_cache()
    return {"read_GBps": n / read_ms / 1e6, "copy_GBps": 2 * n / copy_ms / 1e6}


def hf_decode(m, vocab, prompt, gen, reps):
    """HF's decoding tokens/s after a prompt: one forward a token through its KV cache (median of reps)."""
    import torch
    out = []
    for rep in range(reps + 1):
        g = torch.Generator("cuda").manual_seed(prompt + rep)
        ids = torch.randint(0, vocab, (1, prompt + gen), device="cuda", generator=g)
        with torch.inference_mode():
            past = m(ids[:, :prompt], use_cache=True, logits_to_keep=1).past_key_values
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for i in range(gen):
                past = m(ids[:, prompt + i:prompt + i + 1], past_key_values=past, use_cache=True).past_key_values
            torch.cuda.synchronize()
        if rep:
            out.append(gen / (time.perf_counter() - t0))
        del past
        torch.cuda.empty_cache()
    return sorted(out)[len(out) // 2]


def run_json_lines(cmd, timeout):
    print(" ".join(cmd), flush=True)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout} s"
    try:  # cascade bench --json prints one indented object, ada_cuda_bench one object a line
        lines = [json.loads(r.stdout)]
    except json.JSONDecodeError:
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    return lines, (r.stderr[-1500:] if r.returncode else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cascade", required=True, help="the cascade CLI of a CUDA build")
    ap.add_argument("--ada-bench", required=True, help="bench/ada_cuda_bench of a CUDA build")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="llama-8b")
    ap.add_argument("--prompts", default="2048,16384")
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=0.22, help="ADA's planted r/T")
    ap.add_argument("--skip-hf", action="store_true", help="Cascade's rows only (comparing two builds on one machine)")
    a = ap.parse_args()
    try:  # bad input: one message and exit code 2 (argparse's), before anything is loaded
        prompts = [int(x) for x in a.prompts.split(",")]
    except ValueError:
        ap.error(f"--prompts: comma-separated token counts, not {a.prompts!r}")
    if min(prompts) < 1 or a.gen < 1 or a.reps < 1:
        ap.error("--prompts, --gen and --reps must be at least 1")
    if not 0 < a.fraction <= 1:
        ap.error(f"--fraction: ADA's planted r/T, in (0, 1], not {a.fraction}")
    import torch
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu_decode.py: no GPU")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_gpu_models import config, make_checkpoint
    os.makedirs(a.out, exist_ok=True)
    ckpt = f"/tmp/bench-whole-{a.model}"
    m = make_checkpoint(a.model, config(a.model, max(prompts) + a.gen), ckpt)
    numels = {k: p.numel() for k, p in m.named_parameters()}
    d = m.config.hidden_size
    embed = next(k for k, p in m.named_parameters() if p is m.get_input_embeddings().weight)
    pos = next((k for k in numels if "embed_positions" in k or k.endswith("wpe.weight")), None)
    tied = m.get_output_embeddings().weight is m.get_input_embeddings().weight
    wbytes = 2 * weights_read(numels, d, embed, pos, tied)
    layers = m.config.num_hidden_layers
    heads = m.config.num_attention_heads
    kd = getattr(m.config, "num_key_value_heads", heads) * (d // heads)
    bw = hbm_bandwidth()
    print(json.dumps({"model": a.model, "weights_read_GB": wbytes / 1e9, **bw}), flush=True)
    rows = []
    for P in [] if a.skip_hf else prompts:
        t = P + (a.gen - 1) / 2  # the mean context length over the decoded steps
        rows.append({"engine": "hf", "prompt": P, "tok_s": hf_decode(m, m.config.vocab_size, P, a.gen, a.reps),
                     "bytes": step_bytes(wbytes, layers, kd, d, t)})
        print(json.dumps(rows[-1]), flush=True)
    del m
    torch.cuda.empty_cache()
    for P in prompts:
        t = P + (a.gen - 1) / 2
        for g in ("on", "off"):
            out, err = run_json_lines([a.cascade, "bench", "--model", ckpt, "--device", "cuda", "--dtype", "bf16",
                                       "--attention", "full", "--cuda-graphs", g, "--prompt-tokens", str(P),
                                       "--gen-tokens", str(a.gen), "--reps", str(a.reps), "--json"], 400)
            row = {"engine": f"cascade exact, graphs {g}", "prompt": P, "bytes": step_bytes(wbytes, layers, kd, d, t)}
            row.update({"tok_s": out[0]["decode_tok_s"]} if out else {"error": err})
            rows.append(row)
            print(json.dumps(row), flush=True)
        for g in ("off", "on"):
            out, err = run_json_lines([a.ada_bench, "--model", ckpt, "--dtype", "bf16", "--tau", "0.3", "--select",
                                       "cascade", "--queries", "reps", "--reps", str(a.reps), "--gen", str(a.gen),
                                       "--attention-kernel", "auto", "--cuda-graphs", g, f"{P}:{a.fraction}"], 400)
            for k in ("exact", "ada"):
                row = {"engine": f"ada_cuda_bench {k}, graphs {g}", "prompt": P}
                got = out[0].get(k, {}) if out else {}
                if "decode_tok_s" in got:
                    r = None if k == "exact" else a.fraction * t
                    row.update(tok_s=got["decode_tok_s"], bytes=step_bytes(wbytes, layers, kd, d, t, r))
                    if k == "ada":
                        row["r_over_T"] = sum(got["r_over_T"]) / len(got["r_over_T"])
                else:
                    row["error"] = got.get("error", err)
                rows.append(row)
                print(json.dumps(row), flush=True)
    for r in rows:
        if "tok_s" in r:
            r["GBps"] = r["bytes"] * r["tok_s"] / 1e9
            r["of_read_bound"] = r["GBps"] / bw["read_GBps"]
    meta = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "model": a.model, "gen": a.gen,
            "reps": a.reps, "weights_read_GB": wbytes / 1e9, **bw, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(os.path.join(a.out, "decode_bench.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"read bound {bw['read_GBps']:.0f} GB/s (copy {bw['copy_GBps']:.0f}); weights read a step {wbytes / 1e9:.2f} GB")
    print("| engine | prompt | tok/s | GB read a step | GB/s | of the read bound |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "tok_s" in r:
            print(f"| {r['engine']} | {r['prompt']} | {r['tok_s']:.1f} | {r['bytes'] / 1e9:.2f} | {r['GBps']:.0f} | {r['of_read_bound']:.0%} |")
        else:
            print(f"| {r['engine']} | {r['prompt']} | {r.get('error', '-')} | | | |")


if __name__ == "__main__":
    main()
