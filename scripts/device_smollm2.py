#!/usr/bin/env python3
"""Hugging Face references for SmolLM2-135M-Instruct (Q4_1 GGUF), for tests/data/smollm2/.

Run where transformers, tokenizers, torch and gguf are (it was run on the device machine; see
RESULTS.md):  python3 scripts/device_smollm2.py --gguf MODEL.gguf --wiki wiki.test.raw --out DIR

The model is AutoModelForCausalLM.from_pretrained(gguf_file=...) in float32: transformers dequantizes
the Q4_1 tensors itself, so its weights equal the engine's dequantized ones and the logits compare
fp32 against fp32. The tokenizer is AutoTokenizer(gguf_file=...). transformers' GGUF reader knows no
"smollm" pre-tokenizer and builds a plain ByteLevel one, while SmolLM2's own tokenizer.json (and
llama.cpp) split digits off first: the ids are made with that Digits + ByteLevel pipeline, and the
ids of the plain reader are compared with them (info.json says on how many lines they differ).

Writes into DIR:
  hard.json             texts (tests/data/tokenizer/gpt2_hard.json's plus SmolLM2-specific ones) and ids
                        (bytes with no token: transformers 5.23 drops them, as llama.cpp does; 5.17
                        writes one fused <|endoftext|> for a run of them)
  wikitext_line_ids.npy, wikitext_line_lens.npy   every non-empty line ("\\n"-split, a trailing "\\r"
                        dropped), encoded alone without special tokens: uint16 ids, int32 lengths
  wikitext_ids.npy      the whole file encoded once, with the tokenizer's special prefix (none here)
  prompt.json           a fixed prompt, its ids, and HF's greedy continuation of it
  logits_last.npy       float32 logits of the prompt's last LAST positions [LAST, vocab]
  logits_top_ids.npy, logits_top_vals.npy   top-TOPK ids (int32) and logits (float32) at every position
  logits_maxabs.npy     max |logit| at every position (the scale of the relative tolerance)
  perplexity.json       perplexity at ctx 2048, non-overlapping windows (src/eval/perplexity.h's
                        convention), with every window's begin, end, scored count and NLL
  info.json             versions, device, timings, tokenizer comparison
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import transformers
from tokenizers import pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPT = ("The history of the town goes back to a Roman fort on the river crossing. In the Middle Ages it "
          "grew into a market town with a castle, two churches and a bridge of nine arches, and in 1852 "
          "the railway reached it. Today the town is best known for")
EXTRA_HARD = [
    "digits 0123456789 x12y 3.5e-7 \u00b2\u00b3\u00bd \u0663\u0664 \uff11\uff12",
    "control bytes \x04\x06\x13\x14\x16\x1d with no token",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "tab\t\x0b\x0cform feeds\u2028line sep",
    "  = = Gameplay = =  \n",
]
CTX, LAST, TOPK, GREEDY = 2048, 3, 20, 32


def wiki_lines(text):
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    return [ln for ln in lines if ln]


def perplexity(model, ids, ctx, device):
    """Non-overlapping windows [b, b + ctx); each scores all but its first token."""
    windows, nll_sum, scored = [], 0.0, 0
    for begin in range(0, len(ids), ctx):
        end = min(begin + ctx, len(ids))
        if end - begin < 2:
            break
        x = torch.tensor([ids[begin:end]], device=device)
        with torch.no_grad():
            logp = torch.log_softmax(model(x).logits[0].double(), dim=-1)
        tgt = x[0, 1:]
        nll = -logp[:-1].gather(1, tgt[:, None]).sum().item()
        windows.append({"begin": begin, "end": end, "scored": end - begin - 1, "nll": nll})
        nll_sum += nll
        scored += end - begin - 1
    return {"ctx": ctx, "stride": ctx, "tokens": len(ids), "scored": scored, "nll": nll_sum,
            "ppl": math.exp(nll_sum / scored), "windows": windows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--wiki", required=True)
    ap.add_argument("--hard", default="tests/data/tokenizer/gpt2_hard.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-windows", type=int, default=0, help="0: all (a quick local check uses a few)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 products stay fp32 on the GPU
    device = "cuda" if torch.cuda.is_available() else "cpu"
    info = {"transformers": transformers.__version__, "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    d, f = os.path.split(os.path.abspath(a.gguf))
    t0 = time.time()

    plain = AutoTokenizer.from_pretrained(d, gguf_file=f)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    info["plain_pre_tokenizer"] = str(plain.backend_tokenizer.pre_tokenizer)
    enc = lambda t, s: t(s, add_special_tokens=False)["input_ids"]

    texts = [c["text"] for c in json.load(open(a.hard, encoding="utf-8"))] + EXTRA_HARD
    hard = [{"text": s, "ids": enc(tok, s)} for s in texts]
    json.dump(hard, open(os.path.join(a.out, "hard.json"), "w"), ensure_ascii=False, indent=0)

    wiki = open(a.wiki, "rb").read().decode("utf-8")
    lines = wiki_lines(wiki)
    line_ids = [enc(tok, ln) for ln in lines]
    info["plain_vs_digits_differing_lines"] = sum(enc(plain, ln) != ids for ln, ids in zip(lines, line_ids))
    info["plain_vs_digits_differing_hard"] = sum(enc(plain, h["text"]) != h["ids"] for h in hard)
    np.save(os.path.join(a.out, "wikitext_line_ids.npy"), np.array([i for x in line_ids for i in x], dtype=np.uint16))
    np.save(os.path.join(a.out, "wikitext_line_lens.npy"), np.array([len(x) for x in line_ids], dtype=np.int32))
    ids = tok(wiki, add_special_tokens=True)["input_ids"]
    info["plain_vs_digits_whole_file_equal"] = plain(wiki, add_special_tokens=True)["input_ids"] == ids
    np.save(os.path.join(a.out, "wikitext_ids.npy"), np.array(ids, dtype=np.uint16))
    info["tokenize_s"] = time.time() - t0

    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                                 attn_implementation="eager").to(device).eval()
    info["load_s"] = time.time() - t0

    prompt_ids = enc(tok, PROMPT)
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids], device=device)).logits[0].float().cpu()
        greedy = model.generate(torch.tensor([prompt_ids], device=device), max_new_tokens=GREEDY,
                                do_sample=False)[0, len(prompt_ids):].tolist()
    json.dump({"text": PROMPT, "ids": prompt_ids, "greedy": greedy}, open(os.path.join(a.out, "prompt.json"), "w"),
              indent=0)
    top = torch.topk(logits, TOPK, dim=-1)
    np.save(os.path.join(a.out, "logits_last.npy"), logits[-LAST:].numpy())
    np.save(os.path.join(a.out, "logits_top_ids.npy"), top.indices.numpy().astype(np.int32))
    np.save(os.path.join(a.out, "logits_top_vals.npy"), top.values.numpy())
    np.save(os.path.join(a.out, "logits_maxabs.npy"), logits.abs().max(dim=-1).values.numpy())

    t0 = time.time()
    n = len(ids) if a.max_windows == 0 else min(len(ids), a.max_windows * CTX)
    ppl = perplexity(model, ids[:n], CTX, device)
    info["perplexity_s"] = time.time() - t0
    json.dump(ppl, open(os.path.join(a.out, "perplexity.json"), "w"), indent=0)
    json.dump(info, open(os.path.join(a.out, "info.json"), "w"), indent=1)
    print(json.dumps(info), f"ppl {ppl['ppl']:.4f} over {ppl['scored']} tokens, {len(ppl['windows'])} windows")


if __name__ == "__main__":
    main()
