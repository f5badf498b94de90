#!/usr/bin/env python3
"""Converts a llama2.c checkpoint to a Hugging Face Llama directory (config.json + model.safetensors,
float32), so that HF transformers can run the same model (benchmarks, cross-checks). Q and K rows are
permuted from llama2.c's interleaved rotary layout to HF's half-split one, as HF's own
convert_llama_weights_to_hf does. Needs numpy only.

Usage: python3 scripts/llama2c_to_hf.py MODEL.bin OUT_DIR
"""
import json
import os
import struct
import sys

import numpy as np

from safetensors_writer import write_f32


def permute(w, n_heads):
    """HF's permute: rows of each head from (pair, 2) order to (2, pair) order."""
    out_dim, in_dim = w.shape
    return w.reshape(n_heads, out_dim // n_heads // 2, 2, in_dim).transpose(0, 2, 1, 3).reshape(out_dim, in_dim)


def main():
    src, out = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    dim, hidden, L, H, Hkv, V, ctx = struct.unpack_from("<7i", data, 0)
    shared = V > 0
    V = abs(V)
    hd, kvd = dim // H, dim // H * Hkv
    f = np.frombuffer(data, dtype="<f4", offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = f[off:off + n].reshape(shape)
        off += n
        return a

    emb = take(V, dim)
    att_norm, wq, wk, wv, wo = take(L, dim), take(L, dim, dim), take(L, kvd, dim), take(L, kvd, dim), take(L, dim, dim)
    ffn_norm, w1, w2, w3 = take(L, dim), take(L, hidden, dim), take(L, dim, hidden), take(L, hidden, dim)
    final_norm = take(dim)
    take(ctx, hd // 2), take(ctx, hd // 2)  # legacy rotary tables
    head = emb if shared else take(V, dim)
    t = {"model.embed_tokens.weight": emb, "model.norm.weight": final_norm}
    if not shared:
        t["lm_head.weight"] = head
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = att_norm[i]
        t[p + "post_attention_layernorm.weight"] = ffn_norm[i]
        t[p + "self_attn.q_proj.weight"] = permute(wq[i], H)
        t[p + "self_attn.k_proj.weight"] = permute(wk[i], Hkv)
        t[p + "self_attn.v_proj.weight"] = wv[i]
        t[p + "self_attn.o_proj.weight"] = wo[i]
        t[p + "mlp.gate_proj.weight"], t[p + "mlp.down_proj.weight"], t[p + "mlp.up_proj.weight"] = w1[i], w2[i], w3[i]
    os.makedirs(out, exist_ok=True)
    write_f32(os.path.join(out, "model.safetensors"), t)
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": dim, "intermediate_size": hidden,
           "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": Hkv, "vocab_size": V,
           "max_position_embeddings": ctx, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": shared, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
