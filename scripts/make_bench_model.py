#!/usr/bin/env python3
"""Writes a GPT-2-124M-shaped checkpoint with random weights (N(0, 0.02), norms at 1, biases at 0)
as a Hugging Face directory (config.json + model.safetensors, float32), for speed benchmarks only.
Needs numpy alone; the safetensors file is written by hand (8-byte header length, JSON header, data).

Usage: python3 scripts/make_bench_model.py OUT_DIR [--layers 12 --width 768 --heads 12 --ctx 1024]
"""
import argparse
import json
import os

import numpy as np

from safetensors_writer import write_f32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50257)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    d, V = a.width, a.vocab
    t = {"transformer.wte.weight": rng.normal(0, 0.02, (V, d)), "transformer.wpe.weight": rng.normal(0, 0.01, (a.ctx, d))}
    for i in range(a.layers):
        p = f"transformer.h.{i}."
        t[p + "ln_1.weight"], t[p + "ln_1.bias"] = np.ones(d), np.zeros(d)
        t[p + "ln_2.weight"], t[p + "ln_2.bias"] = np.ones(d), np.zeros(d)
        t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"] = rng.normal(0, 0.02, (d, 3 * d)), np.zeros(3 * d)
        t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"] = rng.normal(0, 0.02, (d, d)), np.zeros(d)
        t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = rng.normal(0, 0.02, (d, 4 * d)), np.zeros(4 * d)
        t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = rng.normal(0, 0.02, (4 * d, d)), np.zeros(d)
    t["transformer.ln_f.weight"], t["transformer.ln_f.bias"] = np.ones(d), np.zeros(d)
    os.makedirs(a.out, exist_ok=True)
    write_f32(os.path.join(a.out, "model.safetensors"), t)
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": V, "n_positions": a.ctx,
           "n_embd": d, "n_layer": a.layers, "n_head": a.heads, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True, "bos_token_id": 50256, "eos_token_id": 50256}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    print(f"wrote {a.out}: {sum(x.size for x in t.values())} parameters")


if __name__ == "__main__":
    main()
