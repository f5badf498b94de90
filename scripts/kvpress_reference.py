#!/usr/bin/env python3
"""The peer methods' continuation figures from NVIDIA kvpress itself, to check Cascade's against.

An independent run of SPEC 8's continuation protocol on the windows a Cascade study used: Hugging Face
transformers runs the model (a GGUF dequantized to float32 by transformers, eager attention, on the
CPU), and kvpress's own presses compress the cache during the context's prefill, exactly as its
pipeline does (`with press(model): model(context, past_key_values=cache)`); the continuation then
runs on that cache at positions C..T-1 (kvpress's pipeline passes the question's position_ids the same
way). Scored: the M - 1 predictions inside each window (continuation logits 0..M-2 against tokens
1..M-1), as Cascade scores them. Exact attention is the same two passes without a press.

Run where torch, transformers (< 5.3, kvpress 0.5.5's bound), gguf and kvpress 0.5.5 are installed:

    python3 scripts/kvpress_reference.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf \\
        --ids tests/data/smollm2/wikitext_ids.npy --study results/smollm2-peers-cpu-ctx2048/metrics.json \\
        --configs streaming@0.1,snapkv@0.25,... --json out.json

--ids are the text's token ids as Cascade tokenizes it (tests/data/smollm2/wikitext_ids.npy holds
WikiText-2 test's, checked against the engine by smollm2_test); --study names a Cascade study whose
windows (per_window.begin), ctx and continuation are reused.
"""

import argparse
import contextlib
import json
import math
import os
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, DynamicCache

import kvpress

# Cascade's method names -> kvpress press classes (kvpress/presses/*_press.py) and their arguments.
PRESSES = {
    "streaming": lambda cr: kvpress.StreamingLLMPress(compression_ratio=cr),
    "snapkv": lambda cr: kvpress.SnapKVPress(compression_ratio=cr),
    "tova": lambda cr: kvpress.TOVAPress(compression_ratio=cr),
    "h2o": lambda cr: kvpress.ObservedAttentionPress(compression_ratio=cr),
    "knorm": lambda cr: kvpress.KnormPress(compression_ratio=cr),
    "expected-attention": lambda cr: kvpress.ExpectedAttentionPress(compression_ratio=cr),
    # The same definition as Cascade's random, torch's generator: the kept entries differ.
    "random": lambda cr: kvpress.RandomPress(compression_ratio=cr, seed=0),
}


def continuation_nll(model, ctx, cont, press):
    """Mean NLL of cont[1:] given the context (compressed by press during its prefill) and cont."""
    cache = DynamicCache()
    with torch.no_grad():
        with press(model) if press is not None else contextlib.nullcontext():
            # h2o (observed attention) reads the attention weights of the prefill.
            model(input_ids=ctx, past_key_values=cache, output_attentions=isinstance(press, kvpress.ObservedAttentionPress))
        C, M = ctx.shape[1], cont.shape[1]
        pos = torch.arange(C, C + M).unsqueeze(0)
        logits = model(input_ids=cont, past_key_values=cache, position_ids=pos).logits[0, :-1].double()
    nll = torch.nn.functional.cross_entropy(logits, cont[0, 1:].long(), reduction="mean")
    kept = cache.layers[0].keys.shape[-2] - M if hasattr(cache, "layers") else None
    return float(nll), kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--study", required=True, help="a Cascade study's metrics.json (its windows, ctx, continuation)")
    ap.add_argument("--configs", required=True, help="comma-separated METHOD@BUDGET, e.g. snapkv@0.25")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--windows", type=int, default=0, help="only the study's first N windows (0: all)")
    a = ap.parse_args()

    study = json.load(open(a.study))
    T, M = study["params"]["ctx"], study["params"]["continuation"]
    begins = study["per_window"]["begin"][:a.windows or None]
    ids = np.load(a.ids).astype(np.int64)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.gguf)), gguf_file=os.path.basename(a.gguf),
                                                 dtype=torch.float32, attn_implementation="eager")
    model.eval()
    configs = a.configs.split(",")
    out = {"T": T, "M": M, "begins": begins, "torch": torch.__version__, "kvpress": getattr(kvpress, "__version__", "0.5.5"),
           "windows": []}
    for b in begins:
        w = torch.from_numpy(ids[b:b + T]).unsqueeze(0)
        ctx, cont = w[:, :T - M], w[:, T - M:]
        t0 = time.perf_counter()
        exact, _ = continuation_nll(model, ctx, cont, None)
        row = {"begin": b, "ppl_exact": math.exp(exact), "configs": {}}
        for cfg in configs:
            name, budget = cfg.split("@")
            nll, kept = continuation_nll(model, ctx, cont, PRESSES[name](1.0 - float(budget)))
            row["configs"][cfg] = {"ppl_ratio": math.exp(nll - exact), "kept": kept}
        out["windows"].append(row)
        print(f"window at {b}: exact ppl {row['ppl_exact']:.4f}, " +
              ", ".join(f"{c} {v['ppl_ratio']:.4f} ({v['kept']} kept)" for c, v in row["configs"].items()) +
              f" [{time.perf_counter() - t0:.0f} s]", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
