#!/usr/bin/env python3
"""Writes the GGUF test fixtures in tests/data/gguf/ (a few hundred KB in all).

The expected values come from the `gguf` Python package (llama.cpp's own gguf-py), not from
Cascade, so tests/unit/gguf_test.cc checks the C++ reader against an independent implementation:

  dequant/<TYPE>_blocks.npy   raw blocks (uint8, [n_blocks, bytes_per_block]) crafted to hit edge
                              cases: largest/smallest/zero/negative f16 scales, all-0 and all-1
                              bits, signed extremes of int8 fields, and random payloads
  dequant/<TYPE>_values.npy   gguf.quants.dequantize of those blocks (float32, [n_blocks, block])
  tiny_llama_bpe.gguf         a 2-layer llama with random weights in ten tensor types, untied
                              lm_head, and a tiny "gpt2" byte-level BPE tokenizer
  tiny_llama_bpe_expected.json per tensor as Cascade should return it (Hugging Face name and
                              layout: Q/K rows un-permuted): name, shape, sum of all values, and
                              where its samples start in the two arrays below
  tiny_llama_bpe_sample_idx.npy / _sample_val.npy  128 sampled flat indices (int32) per tensor and
                              the values there (float32): full values would be ten times the size
  tiny_llama_spm.gguf         a 1-layer llama with tied embeddings and a "llama" (sentencepiece)
                              tokenizer

Usage: pip install gguf numpy && python3 scripts/make_gguf_fixtures.py
"""
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter, TokenType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "gguf"
rng = np.random.default_rng(1234)

# Byte offsets of the f16 scale fields inside each block (ggml-common.h).
HALF_FIELDS = {Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
               Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}
EDGE_HALVES = [65504.0, -65504.0, 2.0**-24, 2.0**-14, 0.0, -0.0, 1.0, -1.5, 0.333]
EDGE_BYTES = [0x00, 0xFF, 0x0F, 0xF0, 0x80, 0x7F, 0x55, None, None]  # None: random payload


def half_bytes(x):
    return np.array([x], dtype=np.float16).view(np.uint8)


def edge_blocks(qtype, n_blocks=16):
    """Blocks cycling through edge scales and edge payloads (9 and 9 values, offset per field)."""
    size = GGML_QUANT_SIZES[qtype][1]
    blocks = np.empty((n_blocks, size), dtype=np.uint8)
    for i in range(n_blocks):
        fill = EDGE_BYTES[i % len(EDGE_BYTES)]
        blocks[i] = rng.integers(0, 256, size) if fill is None else fill
        for k, off in enumerate(HALF_FIELDS[qtype]):
            blocks[i, off:off + 2] = half_bytes(EDGE_HALVES[(i + 4 * k) % len(EDGE_HALVES)])
    return blocks


def float_values(qtype):
    """Raw F32/F16/BF16 values including extremes, subnormals, signed zero and infinities."""
    if qtype == Q.F16:
        specials = np.array([65504, -65504, 2**-24, -(2**-24), 2**-14, 0.0, -0.0, np.inf, -np.inf, 1.0 / 3], np.float16)
        return np.concatenate([specials, rng.standard_normal(22).astype(np.float16)]).view(np.uint8)
    if qtype == Q.BF16:
        bits = np.array([0x7F7F, 0xFF7F, 0x0001, 0x8001, 0x0080, 0x0000, 0x8000, 0x7F80, 0xFF80, 0x3EAB], np.uint16)
        rand = (rng.standard_normal(22).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        return np.concatenate([bits, rand]).view(np.uint8)
    f32 = np.finfo(np.float32)
    specials = np.array([f32.max, f32.min, f32.tiny, f32.smallest_subnormal, 0.0, -0.0, np.inf, -np.inf, 1e-30, -7.25],
                        np.float32)
    return np.concatenate([specials, rng.standard_normal(22).astype(np.float32)]).view(np.uint8)


def write_dequant_fixtures():
    d = OUT / "dequant"
    d.mkdir(parents=True, exist_ok=True)
    for qtype in [Q.F32, Q.F16, Q.BF16]:
        raw = float_values(qtype).reshape(1, -1)
        np.save(d / f"{qtype.name}_blocks.npy", raw)
        np.save(d / f"{qtype.name}_values.npy", dequantize(raw, qtype).astype(np.float32))
    for qtype in HALF_FIELDS:
        blocks = edge_blocks(qtype)
        np.save(d / f"{qtype.name}_blocks.npy", blocks)
        # dequantize() takes rows of whole blocks: one block per row here.
        np.save(d / f"{qtype.name}_values.npy", dequantize(blocks, qtype).astype(np.float32))


def random_tensor(rows, cols, qtype):
    """Raw GGUF data for a [rows, cols] tensor of qtype, and its float32 dequantization."""
    if qtype in (Q.F32, Q.F16, Q.BF16):
        w = (rng.standard_normal((rows, cols)) * 0.1).astype(np.float32)
        raw = w.astype(np.float16) if qtype == Q.F16 else quantize(w, qtype)
    elif qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):  # gguf-py cannot quantize k-quants: random blocks
        block, size = GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
        for off in HALF_FIELDS[qtype]:
            raw[..., off:off + 2] = (rng.random((rows, cols // block, 1)) * 0.01).astype(np.float16).view(np.uint8)
        raw = raw.reshape(rows, -1)
    else:
        raw = quantize((rng.standard_normal((rows, cols)) * 0.1).astype(np.float32), qtype)
    return raw, dequantize(raw, qtype).astype(np.float32).reshape(rows, cols)


def meta_permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: Hugging Face rows -> Meta's interleaved rotary rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_unpermute(w, n_head):
    """The inverse, written independently of Cascade's meta_to_hf_rotary_rows."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gpt2_byte_chars():
    """GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_tiny_bpe():
    dim, ff, n_head, n_kv, layers = 32, 256, 2, 1, 2  # ff = 256: the k-quants need 256 columns
    tokens = gpt2_byte_chars() + ["he", "ll", "hell", "hello", "<|endoftext|>"]
    merges = ["h e", "l l", "he ll", "hell o"]
    types = [TokenType.NORMAL] * (len(tokens) - 1) + [TokenType.CONTROL]
    vocab = len(tokens)

    w = GGUFWriter(OUT / "tiny_llama_bpe.gguf", "llama")
    w.add_name("tiny test llama")
    w.add_block_count(layers)
    w.add_context_length(128)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_count(dim // n_head)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab - 1)
    w.add_eos_token_id(vocab - 1)
    w.add_add_bos_token(False)

    expected = []  # (hf name, float32 array in Hugging Face layout)

    def add(gguf_name, hf_name, rows, cols, qtype, rotary_heads=0):
        raw, values = random_tensor(rows, cols, qtype)
        w.add_tensor(gguf_name, raw, raw_dtype=qtype)
        expected.append((hf_name, hf_unpermute(values, rotary_heads) if rotary_heads else values))

    def add_norm(gguf_name, hf_name):
        values = (1.0 + 0.1 * rng.standard_normal(dim)).astype(np.float32)
        w.add_tensor(gguf_name, values)
        expected.append((hf_name, values))

    hd = dim // n_head
    add("token_embd.weight", "model.embed_tokens.weight", vocab, dim, Q.Q8_0)
    per_layer = [  # (q, k, v, o, gate, up, down) types of layer 0 and layer 1
        (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.F16, Q.BF16, Q.Q4_K),
        (Q.Q8_0, Q.F32, Q.Q4_1, Q.Q4_0, Q.Q5_1, Q.Q5_0, Q.Q6_K),
    ]
    for i, (tq, tk, tv, to, tg, tu, td) in enumerate(per_layer):
        b, h = f"blk.{i}.", f"model.layers.{i}."
        add_norm(b + "attn_norm.weight", h + "input_layernorm.weight")
        # The converter stores Q and K permuted; the raw values here are that permuted layout.
        add(b + "attn_q.weight", h + "self_attn.q_proj.weight", n_head * hd, dim, tq, rotary_heads=n_head)
        add(b + "attn_k.weight", h + "self_attn.k_proj.weight", n_kv * hd, dim, tk, rotary_heads=n_kv)
        add(b + "attn_v.weight", h + "self_attn.v_proj.weight", n_kv * hd, dim, tv)
        add(b + "attn_output.weight", h + "self_attn.o_proj.weight", dim, n_head * hd, to)
        add_norm(b + "ffn_norm.weight", h + "post_attention_layernorm.weight")
        add(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", ff, dim, tg)
        add(b + "ffn_up.weight", h + "mlp.up_proj.weight", ff, dim, tu)
        add(b + "ffn_down.weight", h + "mlp.down_proj.weight", dim, ff, td)
    add_norm("output_norm.weight", "model.norm.weight")
    add("output.weight", "lm_head.weight", vocab, dim, Q.Q8_0)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    index, idx, val = [], [], []
    for name, values in expected:
        flat = values.ravel()
        picks = np.sort(rng.choice(flat.size, size=min(128, flat.size), replace=False)).astype(np.int32)
        index.append({"name": name, "shape": list(values.shape), "sum": float(flat.astype(np.float64).sum()),
                      "first": sum(len(p) for p in idx), "count": len(picks)})
        idx.append(picks)
        val.append(flat[picks])
    np.save(OUT / "tiny_llama_bpe_sample_idx.npy", np.concatenate(idx))
    np.save(OUT / "tiny_llama_bpe_sample_val.npy", np.concatenate(val))
    (OUT / "tiny_llama_bpe_expected.json").write_text("[\n" + ",\n".join(json.dumps(e) for e in index) + "\n]\n")


def write_tiny_spm():
    dim, ff, n_head = 16, 32, 2
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    words = ["▁", "h", "e", "l", "o", "▁h", "ll", "▁he", "llo", "▁hello"]
    tokens = pieces + words
    scores = [0.0] * len(pieces) + [-1.0 - i for i in range(len(words))]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256 + [TokenType.NORMAL] * len(words)

    w = GGUFWriter(OUT / "tiny_llama_spm.gguf", "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ff)
    w.add_head_count(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    small = lambda *shape: (0.1 * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    w.add_tensor("token_embd.weight", small(len(tokens), dim))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(dim, np.float32))
    for name, shape in [("attn_q", (dim, dim)), ("attn_k", (dim, dim)), ("attn_v", (dim, dim)), ("attn_output", (dim, dim)),
                        ("ffn_gate", (ff, dim)), ("ffn_up", (ff, dim)), ("ffn_down", (dim, ff))]:
        w.add_tensor(f"blk.0.{name}.weight", small(*shape))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(dim, np.float32))
    w.add_tensor("output_norm.weight", np.ones(dim, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    write_dequant_fixtures()
    write_tiny_bpe()
    write_tiny_spm()
    print(f"wrote {OUT}")
