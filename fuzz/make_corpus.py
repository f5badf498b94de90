#!/usr/bin/env python3
"""Writes the fuzz seed corpora, fuzz/corpus/<target>/, from the real files: the fixtures in
tests/data, the bundled stories260K tokenizer and, when present, ../shared. Seeds are kept small
(about 1 MB in all) because libFuzzer mutates every byte it is given: a seed is a real file cut
down to its structure (a safetensors file keeps only its small tensors, a tokenizer.bin its first
tokens), never a whole checkpoint. Run from anywhere; it replaces the corpus folders.
"""
import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"
OUT = ROOT / "fuzz" / "corpus"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors_seeds():
    # Each fixture's tensors of at most 256 bytes, with their real bytes and dtypes.
    for model in sorted((DATA / "models").iterdir()):
        blob = (model / "model.safetensors").read_bytes()
        n = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8 : 8 + n])
        out, data = {"__metadata__": header.get("__metadata__", {})}, b""
        for name, t in sorted(header.items()):
            if name == "__metadata__":
                continue
            b, e = t["data_offsets"]
            if e - b <= 256 and len(out) < 8:
                out[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [len(data), len(data) + e - b]}
                data += blob[8 + n + b : 8 + n + e]
        h = json.dumps(out, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        put("safetensors", model.name + ".safetensors", struct.pack("<Q", len(h)) + h + data)


def config_seeds():
    for f in sorted(DATA.glob("models/*/config.json")) + sorted(DATA.glob("ref/*/config_v4.json")):
        put("config", f.parent.name + "_" + f.name, f.read_bytes())


def gguf_seeds():
    for f in sorted((DATA / "gguf").glob("*.gguf")):
        put("gguf", f.name, f.read_bytes())


def llama2c_seeds():
    # dim 8, hidden 16, 1 layer, 2 heads, 1 KV head, vocab 12, seq 4: shared (+12) and own (-12) head.
    dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 1, 12, 4
    kv_dim = dim // heads * kv
    floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim) + dim + seq * dim // heads
    for name, v, extra in (("shared.bin", vocab, 0), ("own_head.bin", -vocab, vocab * dim)):
        body = struct.pack(f"<{floats + extra}f", *[((i * 37) % 17 - 8) / 16 for i in range(floats + extra)])
        put("llama2c", name, struct.pack("<7i", dim, hidden, layers, heads, kv, v, seq) + body)


def llama2c_tokenizer_seeds():
    put("llama2c_tokenizer", "tok512.bin", (ROOT / "models/stories260K/tok512.bin").read_bytes())
    big = SHARED / "models/llama2-tokenizer/tokenizer.bin"
    if big.exists():  # its first 400 tokens: <unk>, <s>, </s>, the byte pieces, the first merges
        b, pos = big.read_bytes(), 4
        for _ in range(400):
            pos += 8 + struct.unpack("<i", b[pos + 4 : pos + 8])[0]
        put("llama2c_tokenizer", "llama2_head.bin", b[:pos])


def text_seeds():
    texts = [c["text"] for f in ("gpt2_hard.json", "llama_hard.json") for c in json.loads((DATA / "tokenizer" / f).read_text())]
    sample = (DATA / "text/sample.txt").read_bytes()
    chunks = [sample[i : i + 200] for i in range(0, min(len(sample), 1600), 200)]
    wiki = SHARED / "data/wikitext-2-raw/wiki.test.raw"
    if wiki.exists():
        raw = wiki.read_bytes()
        chunks += [raw[i : i + 300] for i in range(0, 300 * 8, 300)]
    for target in ("byte_bpe", "sentencepiece"):
        for i, t in enumerate(dict.fromkeys(texts)):
            put(target, f"hard_{i:02d}.txt", t)
        for i, c in enumerate(chunks):
            put(target, f"chunk_{i:02d}.txt", c)
        put(target, "specials.txt", "<|endoftext|><s></s><unk><0x41>\xe2\x96\x81 x")
        put(target, "invalid_utf8.txt", b"abc\xff\xfe\xc3(\xe2\x82 \xf0\x9f\x98")


def npy_seeds():
    for f in sorted(DATA.glob("ref/*/*.npy")) + sorted(DATA.glob("gguf/dequant/*.npy")):
        if f.stat().st_size <= 4096:
            put("npy", f.parent.name + "_" + f.name, f.read_bytes())
    # Version 2.0 and 3.0 headers (4-byte header length), which no fixture uses.
    for major in (2, 3):
        h = b"{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"
        h += b" " * (-(len(h) + 13) % 64) + b"\n"
        put("npy", f"v{major}.npy", b"\x93NUMPY" + bytes([major, 0]) + struct.pack("<I", len(h)) + h + struct.pack("<6q", *range(6)))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    for make in (safetensors_seeds, config_seeds, gguf_seeds, llama2c_seeds, llama2c_tokenizer_seeds, text_seeds, npy_seeds):
        make()
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"fuzz corpus: {sum(1 for _ in OUT.rglob('*.*'))} seeds, {total} bytes in {OUT}")
