#!/usr/bin/env python3
"""Conformance fixtures made with Hugging Face transformers (run on a machine that has it).

For every architecture the engine supports, builds a tiny random checkpoint (biases and norm weights
perturbed away from their init values), saves it with save_pretrained(safe_serialization=True) under
tests/data/models/<name>/, reloads it from disk in float32 and stores under tests/data/ref/<name>/:
  ids.npy       int32 [T]        a random token sequence
  logits.npy    float32 [T, V]   HF's logits for it (one forward pass)
  hidden.npy    float32 [L, T, d]  HF's hidden states entering each layer
  prompt.npy    int32 [P]        a prompt, and greedy.npy int32 [N]: HF's greedy continuation
  config_v4.json  the same config written the transformers-4.x way (rotary_pct, rope_theta at top
                level, torch_dtype), for the loader's 4.x-form test
It also writes tokenizer references under tests/data/tokenizer/ and a perplexity reference for the
GPT-2 fixture (which carries the real GPT-2 tokenizer) under tests/data/ref/gpt2/perplexity.json.

Usage: python3 scripts/make_fixtures.py [--shared DIR] [--out tests/data] [--only NAME,...]
  --shared DIR       ../shared, whose GPT-2 and Llama 2 tokenizers and WikiText-2 the tokenizer
                     references need (made unless --only leaves out "tokenizer")
  --only NAME,...    just these fixtures (and "tokenizer" for the tokenizer references), e.g.
                     --only llama_rope_linear,llama_rope_llama3
  --bench-gpt2 DIR   instead: write a GPT-2-124M-shaped random checkpoint to DIR (for benchmarks)
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from transformers import (AutoModelForCausalLM, GPT2Config, GPTJConfig, GPTNeoXConfig, LlamaConfig,
                          OPTConfig)

SEED = 1234
T = 24          # reference sequence length
TINY_VOCAB = 384  # the trained tiny tokenizers of the neox and llama fixtures have this many tokens
PROMPT = 6      # greedy prompt length
NEW = 12        # greedy new tokens


def rope(theta, **scaling):
    """Rope settings as LlamaConfig keywords: transformers 5.x takes them in rope_parameters, 4.x as
    rope_theta and rope_scaling. The saved config.json is in the running version's form either way."""
    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"rope_parameters": {"rope_type": scaling.pop("rope_type", "default"), "rope_theta": theta, **scaling}}
    return {"rope_theta": theta, "rope_scaling": scaling or None}


def configs():
    """name -> (config, storage dtype). Small widths keep the committed files to a few MB."""
    c = {}
    c["gpt2"] = (GPT2Config(vocab_size=320, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                            initializer_range=0.1, bos_token_id=0, eos_token_id=0), torch.float16)
    c["opt"] = (OPTConfig(vocab_size=320, hidden_size=64, num_hidden_layers=2, ffn_dim=128,
                          num_attention_heads=4, max_position_embeddings=128, do_layer_norm_before=True,
                          word_embed_proj_dim=64, init_std=0.1), torch.float32)
    c["opt_postln"] = (OPTConfig(vocab_size=320, hidden_size=64, num_hidden_layers=2, ffn_dim=128,
                                 num_attention_heads=4, max_position_embeddings=128,
                                 do_layer_norm_before=False, word_embed_proj_dim=32, init_std=0.1),
                       torch.float16)
    c["gptj"] = (GPTJConfig(vocab_size=320, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                            rotary_dim=8, initializer_range=0.1), torch.bfloat16)
    c["neox"] = (GPTNeoXConfig(vocab_size=TINY_VOCAB, hidden_size=64, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=128, rotary_pct=0.25,
                               rotary_emb_base=10000, max_position_embeddings=128,
                               use_parallel_residual=True, initializer_range=0.1), torch.float32)
    c["neox_seq"] = (GPTNeoXConfig(vocab_size=320, hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=128, rotary_pct=0.5,
                                   rotary_emb_base=500, max_position_embeddings=128,
                                   use_parallel_residual=False, hidden_act="gelu_new",
                                   initializer_range=0.1, tie_word_embeddings=False), torch.float32)
    c["llama"] = (LlamaConfig(vocab_size=TINY_VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                              rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
                              initializer_range=0.1), torch.float32)
    c["llama_gqa"] = (LlamaConfig(vocab_size=320, hidden_size=64, intermediate_size=96,
                                  num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
                                  max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=500000.0,
                                  tie_word_embeddings=False, initializer_range=0.1), torch.bfloat16)
    # Rope scaling on the llama fixture's shape (16-wide heads, T = 24 positions). llama3's original
    # context of 64 puts the heads' 8 wavelengths (2 pi 10^(i/2): 6.3, 20, 63, 199, ...) in all three
    # of its bands (< 16 kept, 16..64 interpolated, > 64 divided by the factor), so the positions of
    # the reference sequence turn at bent frequencies.
    llama_shape = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                       rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.1)
    c["llama_rope_linear"] = (LlamaConfig(**llama_shape, **rope(10000.0, rope_type="linear", factor=4.0)),
                              torch.float32)
    c["llama_rope_llama3"] = (LlamaConfig(**llama_shape, **rope(10000.0, rope_type="llama3", factor=8.0,
                                                                 low_freq_factor=1.0, high_freq_factor=4.0,
                                                                 original_max_position_embeddings=64)),
                              torch.float32)
    return c


def perturb(model, gen):
    """Biases and norm weights away from their init values (0 and 1), so that a loader that drops
    or swaps one of them cannot pass."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            low = name.lower()
            if name.endswith("bias"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
            elif any(k in low for k in ("norm", "ln_", "layer_norm", "layernorm")):
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)


def v4_config(cfg: dict) -> dict:
    """The config as transformers 4.x wrote it: dtype as torch_dtype, rope settings at top level."""
    out = {k: v for k, v in cfg.items() if k not in ("dtype", "rope_parameters")}
    out["torch_dtype"] = cfg.get("dtype", "float32")
    rp = cfg.get("rope_parameters") or {}
    mt = cfg["model_type"]
    if mt == "gpt_neox":
        out["rotary_pct"] = rp.get("partial_rotary_factor", cfg.get("rotary_pct", 1.0))
        out["rotary_emb_base"] = rp.get("rope_theta", cfg.get("rotary_emb_base", 10000))
        out.pop("partial_rotary_factor", None)
    elif mt == "llama":
        out["rope_theta"] = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
        rtype = rp.get("rope_type", "default")
        out["rope_scaling"] = None if rtype == "default" else {k: v for k, v in rp.items() if k != "rope_theta"}
    return out


def make_model(name, cfg, dtype, out_dir, gen):
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(cfg).float().eval()
    perturb(model, gen)
    mdir = os.path.join(out_dir, "models", name)
    shutil.rmtree(mdir, ignore_errors=True)
    model.to(dtype).save_pretrained(mdir, safe_serialization=True)
    # Reference from the saved files, in float32: exactly the weights the engine will read.
    ref_model = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32).eval()
    V = cfg.vocab_size
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, V, size=T).astype(np.int32)
    with torch.no_grad():
        out = ref_model(torch.tensor(ids[None].astype(np.int64)), output_hidden_states=True)
    rdir = os.path.join(out_dir, "ref", name)
    os.makedirs(rdir, exist_ok=True)
    np.save(os.path.join(rdir, "ids.npy"), ids)
    np.save(os.path.join(rdir, "logits.npy"), out.logits[0].float().numpy())
    # H_l entering each layer l (the last hidden state, after the final norm, is left out: with
    # OPT's project_out it has another width).
    np.save(os.path.join(rdir, "hidden.npy"), torch.stack([h[0] for h in out.hidden_states[:-1]]).float().numpy())
    prompt = ids[:PROMPT]
    with torch.no_grad():
        g = ref_model.generate(torch.tensor(prompt[None].astype(np.int64)), max_new_tokens=NEW,
                               min_new_tokens=NEW, do_sample=False, pad_token_id=0)
    np.save(os.path.join(rdir, "prompt.npy"), prompt)
    np.save(os.path.join(rdir, "greedy.npy"), g[0, PROMPT:].numpy().astype(np.int32))
    with open(os.path.join(mdir, "config.json")) as f:
        saved = json.load(f)
    with open(os.path.join(rdir, "config_v4.json"), "w") as f:
        json.dump(v4_config(saved), f, indent=2)
    print(f"{name}: {sum(p.numel() for p in ref_model.parameters())} params, dtype {dtype}, "
          f"max|logit| {out.logits.abs().max().item():.3f}, greedy {g[0, PROMPT:].tolist()}")
    return mdir, ref_model


HARD = [
    "Hello world", " leading space", "  two leading spaces", "trailing space ", "tabs\tand\ttabs",
    "line one\nline two\n\n\nthree newlines", "\r\nCRLF\r\nline", "runs     of      spaces", "   ",
    "\n", "", "emoji 😀🎉👩‍👩‍👧‍👦 done", "CJK 漢字かなカナ한국어", "combining e\u0301 and a\u0308 marks",
    "Ünïcödé Çàfé naïve", "numbers 1234567890 3.14159 1e-10", "punctuation!!! ??? ... ,,, ;;;",
    "it's they're we've I'm you'll he'd", "<|endoftext|>", "before<|endoftext|>after",
    "mixed 😀 text <|endoftext|> with specials", "Zero\u200bwidth", "ﬁ ligature", "\u00a0nbsp\u00a0",
    "@-@ wikitext style 1 @,@ 000", "x" * 300, "The quick brown fox jumps over the lazy dog.",
]


class Gpt2Reference:
    """The GPT-2 byte-level BPE tokenizer built with HF `tokenizers` from the original files, set up
    as GPT-2's tokenizer.json is (ByteLevel pre-tokenizer without prefix space, <|endoftext|> special)."""

    def __init__(self, shared):
        from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
        from tokenizers.models import BPE
        d = os.path.join(shared, "models", "gpt2-tokenizer")
        self.tok = Tokenizer(BPE.from_file(os.path.join(d, "encoder.json"), os.path.join(d, "vocab.bpe")))
        self.tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        self.tok.decoder = decoders.ByteLevel()
        self.tok.add_special_tokens([AddedToken("<|endoftext|>", special=True)])

    def encode(self, text, add_special_tokens=False):
        return self.tok.encode(text, add_special_tokens=add_special_tokens).ids


def gpt2_tokenizer(shared):
    return Gpt2Reference(shared)


def llama_tokenizer_json(shared, path):
    """A Llama-style tokenizer.json built by HF tokenizers from llama2.c's tokenizer.bin: vocab and
    scores from the file, merges derived from the scores (as HF's sentencepiece converter does)."""
    from tokenizers import Tokenizer, decoders, normalizers
    from tokenizers.models import BPE
    import struct
    with open(os.path.join(shared, "models", "llama2-tokenizer", "tokenizer.bin"), "rb") as f:
        data = f.read()
    (maxlen,) = struct.unpack_from("<i", data, 0)
    off, pieces, scores = 4, [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off:off + n].decode("utf-8", errors="surrogateescape"))
        scores.append(score)
        off += n
    pieces = [p.replace(" ", "\u2581") for p in pieces]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i, p in enumerate(pieces):
        if i < 259:  # <unk>, <s>, </s>, byte tokens
            continue
        for k in range(1, len(p)):
            a, b = p[:k], p[k:]
            if a in vocab and b in vocab:
                merges.append((scores[i], vocab[a], vocab[b], a, b))
    merges.sort(key=lambda m: (-m[0], m[1], m[2]))
    tok = Tokenizer(BPE(vocab=vocab, merges=[(m[3], m[4]) for m in merges], unk_token="<unk>",
                        byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken("<unk>", special=True), AddedToken("<s>", special=True),
                            AddedToken("</s>", special=True)])
    tok.save(path)
    return tok


def tiny_tokenizer(kind, out_dir):
    """A tokenizer of TINY_VOCAB tokens trained by HF `tokenizers` on the committed sample text:
    byte-level BPE as GPT-2/NeoX ship it (neox), or sentencepiece-style BPE with byte fallback and a
    BOS post-processor as Llama ships it (llama). They make the fixtures complete checkpoints."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE
    text = open(os.path.join(out_dir, "text", "sample.txt"), encoding="utf-8").read()
    if kind == "neox":
        tok = Tokenizer(BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        tr = trainers.BpeTrainer(vocab_size=TINY_VOCAB, special_tokens=["<|endoftext|>"],
                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([text], tr)
    else:
        specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
        tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        tr = trainers.BpeTrainer(vocab_size=TINY_VOCAB, special_tokens=specials, limit_alphabet=40)
        tok.train_from_iterator([text], tr)
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", 1)])
    return tok


def tokenizer_refs(shared, out_dir):
    tdir = os.path.join(out_dir, "tokenizer")
    os.makedirs(tdir, exist_ok=True)
    wiki = open(os.path.join(shared, "data", "wikitext-2-raw", "wiki.test.raw"), "rb").read().decode("utf-8")
    g = gpt2_tokenizer(shared)
    hard = [{"text": s, "ids": g.encode(s, add_special_tokens=False)} for s in HARD]
    json.dump(hard, open(os.path.join(tdir, "gpt2_hard.json"), "w"), ensure_ascii=False, indent=0)
    ids = g.encode(wiki, add_special_tokens=False)
    np.save(os.path.join(tdir, "gpt2_wikitext_ids.npy"), np.array(ids, dtype=np.uint16))
    print(f"gpt2 tokenizer: wikitext {len(ids)} tokens")
    tj = os.path.join("/tmp", "llama_tokenizer.json")
    lt = llama_tokenizer_json(shared, tj)
    hard = [{"text": s, "ids": lt.encode(s, add_special_tokens=False).ids} for s in HARD]
    json.dump(hard, open(os.path.join(tdir, "llama_hard.json"), "w"), ensure_ascii=False, indent=0)
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in wiki.split("\n")]
    lines = [ln for ln in lines if ln]
    encs = lt.encode_batch(lines, add_special_tokens=False)
    np.save(os.path.join(tdir, "llama_wikitext_ids.npy"),
            np.array([i for e in encs for i in e.ids], dtype=np.uint16))
    np.save(os.path.join(tdir, "llama_wikitext_lens.npy"), np.array([len(e.ids) for e in encs], dtype=np.int32))
    print(f"llama tokenizer: {len(lines)} lines, {sum(len(e.ids) for e in encs)} tokens")


def perplexity_ref(model, tok, text, ctx, stride):
    """HF's documented sliding-window perplexity: windows [begin, begin+ctx) for begin = 0, stride,
    2*stride, ...; a window scores the tokens at indices >= the previous window's end (and > begin,
    since nothing in the window predicts its first token); stop after the window reaching the end."""
    ids = tok.encode(text, add_special_tokens=True).ids
    n = len(ids)
    nll_sum, count, prev_end = 0.0, 0, 0
    for begin in range(0, n, stride):
        end = min(begin + ctx, n)
        x = torch.tensor([ids[begin:end]])
        with torch.no_grad():
            logp = torch.log_softmax(model(x).logits[0].double(), dim=-1)
        for tgt in range(max(begin + 1, prev_end), end):
            nll_sum -= logp[tgt - begin - 1, ids[tgt]].item()
            count += 1
        prev_end = end
        if end == n:
            break
    return math.exp(nll_sum / count), count, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    ap.add_argument("--only", default="")
    ap.add_argument("--bench-gpt2", default="")
    a = ap.parse_args()
    print("transformers", transformers.__version__, "torch", torch.__version__)
    if a.bench_gpt2:
        torch.manual_seed(SEED)
        m = AutoModelForCausalLM.from_config(GPT2Config()).eval()
        m.save_pretrained(a.bench_gpt2, safe_serialization=True)
        return
    gen = torch.Generator().manual_seed(SEED)
    only = set(filter(None, a.only.split(",")))
    unknown = only - set(configs()) - {"tokenizer"}
    if unknown:
        sys.exit(f"--only: no fixture named {', '.join(sorted(unknown))} (known: {', '.join(configs())}, tokenizer)")
    failures = []
    for name, (cfg, dtype) in configs().items():
        if only and name not in only:
            continue
        try:
            tok = tiny_tokenizer(name, a.out) if name in ("neox", "llama") else None
            if tok is not None:
                cfg.vocab_size = tok.get_vocab_size()
            mdir, ref_model = make_model(name, cfg, dtype, a.out, gen)
            if tok is not None:
                tok.save(os.path.join(mdir, "tokenizer.json"))
                with open(os.path.join(mdir, "tokenizer_config.json"), "w") as f:
                    json.dump({"add_bos_token": name == "llama", "bos_token": "<s>" if name == "llama" else None,
                               "eos_token": "</s>" if name == "llama" else "<|endoftext|>"}, f)
                text = open(os.path.join(a.out, "text", "sample.txt"), encoding="utf-8").read()
                refs = []
                for ctx, stride in ((64, 64), (64, 32), (128, 128)):
                    ppl, count, n = perplexity_ref(ref_model, tok, text, ctx, stride)
                    refs.append({"ctx": ctx, "stride": stride, "ppl": ppl, "scored": count, "tokens": n})
                    print(f"{name} perplexity ctx {ctx} stride {stride}: {ppl:.6f} over {count} of {n}")
                json.dump(refs, open(os.path.join(a.out, "ref", name, "perplexity.json"), "w"), indent=1)
                hard = [{"text": s, "ids": tok.encode(s, add_special_tokens=False).ids} for s in HARD]
                json.dump(hard, open(os.path.join(a.out, "ref", name, "tokenizer_hard.json"), "w"),
                          ensure_ascii=False, indent=0)
        except Exception as e:  # keep going: report every failing architecture at once
            import traceback
            traceback.print_exc()
            failures.append(name)
    if not only or "tokenizer" in only:
        try:
            if not a.shared:
                raise ValueError("the tokenizer references need --shared (or leave them out with --only)")
            tokenizer_refs(a.shared, a.out)
        except Exception:
            import traceback
            traceback.print_exc()
            failures.append("tokenizer")
    print("FAILED:", failures if failures else "none")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
