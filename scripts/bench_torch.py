#!/usr/bin/env python3
"""The same measurement as `cascade bench`, with Hugging Face transformers on PyTorch: random token
ids (seeded) of --prompt-tokens prefilled in one forward pass, then --gen-tokens decoded one at a time
with the KV cache (past_key_values); one warm-up, then mean ± std over --reps. float32 on the CPU by
default (--device cuda --dtype float16 on a GPU).

Usage: python3 scripts/bench_torch.py --model DIR [--prompt-tokens 512] [--gen-tokens 32] [--reps 3]
                                      [--threads N] [--json]
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    m = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=dtype).to(a.device).eval()
    V = m.config.vocab_size
    ids = torch.tensor(np.random.default_rng(0).integers(0, V, a.prompt_tokens + a.gen_tokens)[None], device=a.device)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    pre, dec = [], []
    with torch.inference_mode():
        for r in range(a.reps + 1):
            sync()
            t0 = time.perf_counter()
            out = m(ids[:, : a.prompt_tokens], use_cache=True)
            sync()
            tp = time.perf_counter() - t0
            past = out.past_key_values
            t0 = time.perf_counter()
            for g in range(a.gen_tokens):
                p = a.prompt_tokens + g
                out = m(ids[:, p : p + 1], past_key_values=past, use_cache=True)
                past = out.past_key_values
            sync()
            td = time.perf_counter() - t0
            if r == 0:
                continue
            pre.append(a.prompt_tokens / tp)
            if a.gen_tokens:
                dec.append(a.gen_tokens / td)
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    res = {"model": a.model, "engine": f"transformers on torch {torch.__version__} ({a.device}, {a.dtype}, "
                                       f"{torch.get_num_threads()} threads)",
           "prompt_tokens": a.prompt_tokens, "gen_tokens": a.gen_tokens, "reps": a.reps,
           "prefill_tok_s": statistics.mean(pre), "prefill_tok_s_sd": sd(pre),
           "decode_tok_s": statistics.mean(dec) if dec else 0.0, "decode_tok_s_sd": sd(dec) if dec else 0.0}
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"| {a.model} | {res['engine']} | {a.prompt_tokens} | {a.gen_tokens} | "
              f"{res['prefill_tok_s']:.1f} ± {res['prefill_tok_s_sd']:.1f} | {res['decode_tok_s']:.1f} ± {res['decode_tok_s_sd']:.1f} |")


if __name__ == "__main__":
    main()
