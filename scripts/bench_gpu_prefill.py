#!/usr/bin/env python3
"""GPU exact-prefill benchmark (BENCHMARKS.md "GPU: exact prefill"): the Cascade engine against Hugging Face
transformers on the same GPU in the same run, and the GEMM floor (the same GEMMs alone through
torch's F.linear, i.e. cuBLAS), for GPT-2-124M (T=1024), GPT-J-6B and OPT-6.7B shapes (T=2048).

Each model is made by transformers from its config with random weights on the GPU (HF's own init),
timed there, saved as an fp16 safetensors checkpoint, then timed by `cascade bench --device cuda`
with CUDA graphs (the default) and without (--cuda-graphs off).
The 6-7B shapes keep their full width, vocabulary and context and take --big-layers layers (default
4) for both engines: the per-layer comparison at a fraction of the memory and load time.

Both engines compute the logits of the last position only (HF: logits_to_keep=1; cascade bench
prefills with last_only), with no KV cache returned by HF (use_cache=False) and one timed forward per
repetition (CUDA events for HF and the GEMMs, host wall clock around a synchronising forward for
cascade). Medians over --reps after warm-up.

Usage: python3 scripts/bench_gpu_prefill.py --cascade build/cascade --out OUT_DIR [--big-layers 4] [--reps 10]
"""
import argparse
import json
import os
import subprocess
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import AutoModelForCausalLM, GPT2Config, GPTJConfig, OPTConfig


def shapes(big_layers):
    return [
        ("gpt2-124m", 1024, GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257)),
        ("gptj-6b", 2048, GPTJConfig(n_layer=big_layers, n_embd=4096, n_head=16, rotary_dim=64, n_positions=2048,
                                     vocab_size=50400, tie_word_embeddings=False)),
        ("opt-6.7b", 2048, OPTConfig(num_hidden_layers=big_layers, hidden_size=4096, ffn_dim=16384, num_attention_heads=32,
                                     max_position_embeddings=2048, vocab_size=50272, word_embed_proj_dim=4096,
                                     do_layer_norm_before=True)),
    ]


def median_ms(fn, reps, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2], ts


def layer_gemms(name, cfg, T):
    """(n, in, out) of every GEMM of one layer, as the engines run them (QKV stacked in cascade; HF runs
    q, k, v apart except GPT-2's fused c_attn: the FLOPs are the same)."""
    if name.startswith("gpt2"):
        d = cfg.n_embd
        return [(T, d, 3 * d), (T, d, d), (T, d, 4 * d), (T, 4 * d, d)]
    if name.startswith("gptj"):
        d = cfg.n_embd
        return [(T, d, 3 * d), (T, d, d), (T, d, 4 * d), (T, 4 * d, d)]
    d, f = cfg.hidden_size, cfg.ffn_dim
    return [(T, d, 3 * d), (T, d, d), (T, d, f), (T, f, d)]


def gemm_floor(name, cfg, T, layers, vocab, d_head_in, dtype, reps):
    g = layer_gemms(name, cfg, T)
    xs = {k: torch.randn(T, k, device="cuda", dtype=dtype) for k in {i for _, i, _ in g}}
    ws = [[torch.randn(o, i, device="cuda", dtype=dtype) * 0.02 for _, i, o in g] for _ in range(layers)]
    head_x = torch.randn(1, d_head_in, device="cuda", dtype=dtype)
    head_w = torch.randn(vocab, d_head_in, device="cuda", dtype=dtype) * 0.02

    def run():
        for lw in ws:
            for (n, i, o), w in zip(g, lw):
                F.linear(xs[i], w)
        F.linear(head_x, head_w)

    ms, _ = median_ms(run, reps)
    flops = 2 * sum(n * i * o for n, i, o in g) * layers + 2 * d_head_in * vocab
    del ws, xs
    return ms, flops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cascade", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--big-layers", type=int, default=4)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    # Peak GEMM rate on this GPU (8192^3 bf16), for the notes.
    x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms, _ = median_ms(lambda: x @ x, 10)
    peak = 2 * 8192 ** 3 / ms / 1e9
    print(f"8192^3 bf16 matmul: {ms:.3f} ms = {peak:.0f} TFLOP/s", flush=True)
    del x
    # Causal SDPA alone at the shapes bench/attention_cuda_bench.cc times (T, heads, head_dim, dtype).
    for T, H, D, dt in ((1024, 12, 64, torch.float16), (2048, 16, 256, torch.float16), (2048, 32, 128, torch.float16),
                        (2048, 32, 128, torch.bfloat16), (8192, 32, 128, torch.bfloat16)):
        q, k, v = (torch.randn(1, H, T, D, device="cuda", dtype=dt) for _ in range(3))
        ms, _ = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), 20)
        r = {"engine": "sdpa", "T": T, "heads": H, "head_dim": D, "dtype": str(dt), "ms": ms,
             "tflops": 2 * T * T * H * D / ms / 1e9}
        rows.append(r)
        print(json.dumps(r), flush=True)
        del q, k, v
    for name, T, cfg in shapes(a.big_layers):
        if a.only and a.only not in name:
            continue
        ckpt = f"/tmp/bench-{name}"
        with torch.device("cuda"):
            torch.manual_seed(0)
            m = AutoModelForCausalLM.from_config(cfg, dtype=torch.float16).eval()
        attn_impl = getattr(m.config, "_attn_implementation", "?")
        m.save_pretrained(ckpt, safe_serialization=True)
        V = cfg.vocab_size
        layers = cfg.num_hidden_layers
        d_model = cfg.hidden_size
        ids = torch.randint(0, V, (1, T), device="cuda", generator=torch.Generator(device="cuda").manual_seed(0))
        for dtype_name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
            m = m.to(dtype)
            with torch.inference_mode():
                hf_ms, hf_all = median_ms(lambda: m(ids, use_cache=False, logits_to_keep=1), a.reps)
                hf_full_ms, _ = median_ms(lambda: m(ids, use_cache=False), a.reps)
                floor_ms, flops = gemm_floor(name, cfg, T, layers, V, d_model, dtype, a.reps)
            torch.cuda.empty_cache()
            rows.append({"model": name, "T": T, "layers": layers, "dtype": dtype_name, "engine": "hf", "attn": attn_impl,
                         "prefill_ms": hf_ms, "prefill_ms_all": hf_all, "prefill_full_logits_ms": hf_full_ms})
            rows.append({"model": name, "T": T, "layers": layers, "dtype": dtype_name, "engine": "gemm_floor",
                         "prefill_ms": floor_ms, "gemm_flops": flops, "gemm_tflops": flops / floor_ms / 1e9})
            print(json.dumps(rows[-2]), flush=True)
            print(json.dumps(rows[-1]), flush=True)
        del m
        torch.cuda.empty_cache()
        for dtype_name in ("fp16", "bf16"):
            for graphs, engine in (("on", "cascade"), ("off", "cascade_no_graphs")):
                t0 = time.time()
                r = subprocess.run([a.cascade, "bench", "--model", ckpt, "--device", "cuda", "--dtype", dtype_name,
                                    "--cuda-graphs", graphs, "--prompt-tokens", str(T), "--gen-tokens", "0",
                                    "--reps", str(a.reps), "--json"], capture_output=True, text=True)
                if r.returncode != 0:
                    print(r.stdout, r.stderr, flush=True)
                    rows.append({"model": name, "dtype": dtype_name, "engine": engine, "error": r.stderr[-2000:]})
                    continue
                j = json.loads(r.stdout)
                rows.append({"model": name, "T": T, "layers": layers, "dtype": dtype_name, "engine": engine,
                             "prefill_ms": 1e3 * j["prefill_s_median"], "prefill_ms_min": 1e3 * j["prefill_s_min"],
                             "wall_s_incl_load": time.time() - t0})
                print(json.dumps(rows[-1]), flush=True)
    meta = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peak_bf16_tflops_8192": peak, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(os.path.join(a.out, "prefill_bench.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(json.dumps(meta))
    print_table(rows)


def print_table(rows):
    print("| model | T | layers | dtype | HF ms | cascade ms | no graphs ms | GEMM floor ms | HF/cascade | cascade/floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    models = [r for r in rows if "model" in r]
    for name in dict.fromkeys(r["model"] for r in models):
        for dt in ("fp16", "bf16"):
            get = {r["engine"]: r for r in models if r["model"] == name and r.get("dtype") == dt}
            if not {"hf", "cascade", "gemm_floor"} <= get.keys() or "prefill_ms" not in get["cascade"]:
                continue
            h, c, g = get["hf"]["prefill_ms"], get["cascade"]["prefill_ms"], get["gemm_floor"]["prefill_ms"]
            ng = get.get("cascade_no_graphs", {}).get("prefill_ms", float("nan"))
            print(f"| {name} | {get['hf']['T']} | {get['hf']['layers']} | {dt} | {h:.2f} | {c:.2f} | {ng:.2f} | {g:.2f} | {h / c:.2f} | {c / g:.2f} |")
    for r in rows:
        if r.get("engine") == "sdpa":
            print(f"SDPA causal T={r['T']} heads={r['heads']} head_dim={r['head_dim']} {r['dtype']}: {r['ms']:.3f} ms, {r['tflops']:.0f} TFLOP/s")

if __name__ == "__main__":
    main()
