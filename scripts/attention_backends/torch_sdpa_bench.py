#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention, one backend at a time (flash, cudnn, efficient), causal, at
the shapes of cudnn_sdpa_bench.cc, with the engine's row layout ([T, heads * hd] seen as [1, heads, T,
hd] through strides). What the attention-kernel choice is measured against (BENCHMARKS.md "GPU
attention: our kernel, cuDNN or FlashInfer"): PyTorch's default picks one of these, and HF transformers'
"sdpa" runs that default.

Each backend is first checked on the first 64 queries (which, causal, see only the first 64 keys)
against a float64 computation, then timed: median of 20 calls after 3 warm-ups, CUDA events. A
backend that refuses a shape is reported with its reason. One JSON object per line on stdout.

Usage: python3 torch_sdpa_bench.py [T,heads,kv_heads,head_dim,dtype ...]   (default: the issue's grid)
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_gpu_prefill import median_ms  # noqa: E402  (CUDA-event median after 3 warm-ups)

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}


def default_shapes():
    return [(T, 4096 // hd, 4096 // hd // 4, hd, dt) for T in (2048, 8192, 32768) for hd in (64, 128, 256)
            for dt in ("bf16", "f16")]


def parse(arg):
    T, h, kh, hd, dt = arg.split(",")
    if dt not in ("bf16", "f16") or int(h) % int(kh):
        raise SystemExit(f"bad shape '{arg}' (want T,heads,kv_heads,head_dim,bf16|f16)")
    return int(T), int(h), int(kh), int(hd), dt


def rows(T, heads, hd, dtype):
    """[T, heads * hd] rows viewed as [1, heads, T, hd], as the engine holds Q, K, V."""
    return torch.randn(T, heads * hd, device="cuda", dtype=dtype).view(1, T, heads, hd).transpose(1, 2)


def reference(q, k, v, n, scale):
    """Float64 causal attention of the first n queries (they see only the first n keys)."""
    group = q.shape[1] // k.shape[1]
    q64 = q[:, :, :n].double()
    k64 = k[:, :, :n].double().repeat_interleave(group, dim=1)
    v64 = v[:, :, :n].double().repeat_interleave(group, dim=1)
    s = q64 @ k64.transpose(-1, -2) * scale
    s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), -math.inf)
    return torch.softmax(s, dim=-1) @ v64


def bench(backend, T, heads, kv_heads, hd, dt):
    dtype = torch.bfloat16 if dt == "bf16" else torch.float16
    torch.manual_seed(0)
    q, k, v = rows(T, heads, hd, dtype), rows(T, kv_heads, hd, dtype), rows(T, kv_heads, hd, dtype)
    scale = 1 / math.sqrt(hd)
    row = {"backend": f"torch-{backend}", "T": T, "heads": heads, "kv_heads": kv_heads, "head_dim": hd, "dtype": dt}

    def call():
        with sdpa_kernel(BACKENDS[backend]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                                  enable_gqa=heads != kv_heads)
    try:
        out = call()
    except RuntimeError as e:
        row["error"] = str(e).splitlines()[0][:200]
        return row
    n = min(64, T)
    ref = reference(q, k, v, n, scale)
    err = (out[:, :, :n].double() - ref).abs().max().item() / ref.abs().max().item()
    med, _ = median_ms(call, 20)
    row.update(median_ms=round(med, 4), tflops=round(2.0 * T * T * heads * hd / (med * 1e-3) / 1e12, 1),
               rel_error=err, ok=err < 2 ** -6)
    return row


def main():
    shapes = [parse(a) for a in sys.argv[1:]] or default_shapes()
    print(json.dumps({"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                      "gpu": torch.cuda.get_device_name()}), flush=True)
    for shape in shapes:
        for backend in BACKENDS:
            print(json.dumps(bench(backend, *shape)), flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
