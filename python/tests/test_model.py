"""cascade.Model against the committed references: Hugging Face's logits and tokenizer ids, the ADA
trace's invariants, every checkpoint format, and errors as CascadeError."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, ROOT, STORIES

import cascade


def test_logits_match_hugging_face(llama_gqa):
    ids = np.load(DATA / "ref" / "llama_gqa" / "ids.npy")
    ref = np.load(DATA / "ref" / "llama_gqa" / "logits.npy")
    got = llama_gqa.logits(ids)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max() + 1e-5
    # [1, T] and a plain list are the same ids.
    np.testing.assert_array_equal(llama_gqa.logits(ids[None, :]), got)
    np.testing.assert_array_equal(llama_gqa.logits(ids.tolist()), got)


def test_logits_own_the_engine_buffer(llama_gqa):
    got = llama_gqa.logits(np.arange(1, 9))
    assert not got.flags.owndata  # a view of the engine's tensor, kept alive by the array
    got[0, 0] = 1.0  # and writable


def test_ada_at_tau_zero_on_distinct_tokens_is_exact(llama_gqa):
    ids = np.load(DATA / "ref" / "llama_gqa" / "ids.npy")
    assert len(set(ids.tolist())) == len(ids)
    exact = llama_gqa.logits(ids)
    ada = llama_gqa.logits(ids, attention="ada", tau=0.0)
    assert np.abs(ada - exact).max() <= 1e-4 * np.abs(exact).max() + 1e-5


def test_ada_window_keyword(llama_gqa):
    # SPEC 6: a window over every token makes all-queries ADA exact attention, whatever the selection.
    ids = np.load(DATA / "ref" / "llama_gqa" / "ids.npy")
    exact = llama_gqa.logits(ids)
    ada = llama_gqa.logits(ids, attention="ada", tau=0.8, queries="all", window=len(ids))
    assert np.abs(ada - exact).max() <= 1e-4 * np.abs(exact).max() + 1e-5
    short = llama_gqa.logits(ids, attention="ada", tau=0.8, queries="all", window=2, sinks=1)
    assert np.isfinite(short).all()
    with pytest.raises(cascade.CascadeError, match="window: '-2' is not an unsigned integer"):
        llama_gqa.logits(ids, attention="ada", queries="all", window=-2)
    with pytest.raises(cascade.CascadeError, match="--ada-queries all"):
        llama_gqa.logits(ids, attention="ada", window=4)


def test_tokenizer_matches_hugging_face():
    m = cascade.load(DATA / "models" / "llama")
    cases = json.loads((DATA / "ref" / "llama" / "tokenizer_hard.json").read_text(encoding="utf-8"))
    for case in cases:
        ids = m.tokenize(case["text"], add_special=False)
        assert ids.dtype == np.int32
        assert ids.tolist() == case["ids"], case["text"]
        assert m.detokenize(ids) == case["text"]
    with_bos = m.tokenize("Hello world")
    assert with_bos[0] == 1 and with_bos[1:].tolist() == m.tokenize("Hello world", add_special=False).tolist()


def test_every_format_loads():
    ids = [1, 5, 9, 3]
    for path in [DATA / "models" / "llama", STORIES, DATA / "gguf" / "tiny_llama_spm.gguf"]:
        m = cascade.load(path)
        assert m.logits(ids).shape == (4, m.spec["vocab_size"])


def test_generate_is_reproducible(stories):
    greedy = stories.generate("Once upon a time", max_new_tokens=24)
    assert greedy and greedy == stories.generate("Once upon a time", max_new_tokens=24)
    sampled = [stories.generate("Once upon a time", 24, temperature=0.8, top_k=40, seed=7) for _ in range(2)]
    assert sampled[0] == sampled[1]
    assert stories.generate("Once upon a time", max_new_tokens=24, attention="ada", tau=0.3)


def test_spec(stories):
    s = stories.spec
    assert s["model_type"] == "llama" and s["n_layers"] == 5 and s["vocab_size"] == 512


def test_trace(stories):
    ids = stories.tokenize((ROOT / "tests" / "data" / "text" / "sample.txt").read_text(encoding="utf-8"))[:96]
    layers = stories.trace(ids, tau=0.3)
    assert len(layers) == stories.spec["n_layers"]
    T = len(ids)
    for l, t in enumerate(layers):
        reps, parents = t["reps"], t["parents"]
        assert reps.dtype == np.int32 and parents.shape == (T,)
        assert reps[0] == 0 and np.all(np.diff(reps) > 0)
        np.testing.assert_array_equal(parents[reps], reps)
        assert np.all(parents <= np.arange(T))
        assert t["gram_needed"] <= t["gram_computed"]
        assert t["jaccard_vs_full"] == 1.0  # the exact cascade
        assert 0 <= t["attention_error"]
        if l == 0:
            assert len(t["added"]) == 0 and len(t["removed"]) == 0


def test_trace_at_tau_zero_keeps_every_distinct_token(llama_gqa):
    ids = np.load(DATA / "ref" / "llama_gqa" / "ids.npy")
    for t in llama_gqa.trace(ids, tau=0.0):
        np.testing.assert_array_equal(t["reps"], np.arange(len(ids)))
        np.testing.assert_array_equal(t["parents"], np.arange(len(ids)))
        assert t["attention_error"] < 1e-5


def test_errors_are_cascade_errors(stories):
    assert issubclass(cascade.CascadeError, ValueError)
    with pytest.raises(cascade.CascadeError, match="no-such"):
        cascade.load(ROOT / "no-such-model.bin")
    with pytest.raises(cascade.CascadeError, match="tau"):
        stories.logits([1, 2, 3], attention="ada", tau=1.5)
    with pytest.raises(cascade.CascadeError, match="attention"):
        stories.logits([1, 2, 3], attention="sparse")
    with pytest.raises(cascade.CascadeError):
        stories.logits([1, 99999])  # outside the vocabulary
    if not cascade.cuda_available():  # test_cuda.py loads it there
        with pytest.raises(cascade.CascadeError, match="device"):
            cascade.load(STORIES, device="cuda")
    with pytest.raises(cascade.CascadeError):
        cascade.load(DATA / "models" / "llama_gqa").tokenize("no tokenizer beside this one")
    with pytest.raises(TypeError):
        stories.trace([1, 2, 3], no_such_option=1)


def _cli():
    """The `cascade` command line built beside this checkout (CASCADE_CLI names another), or None."""
    for p in [os.environ.get("CASCADE_CLI"), ROOT / "build" / "cascade", ROOT / "build-cpu" / "cascade"]:
        if p and Path(p).is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def _run_cli(*args):
    cli = _cli()
    if cli is None:
        pytest.skip("no cascade CLI built (build/cascade, build-cpu/cascade or CASCADE_CLI)")
    r = subprocess.run([cli, *map(str, args)], capture_output=True, check=True)
    return r.stdout


def test_generate_equals_the_cli(stories):
    options = dict(temperature=0.8, top_k=40, top_p=0.95, seed=7, attention="ada", tau=0.3, select="cascade")
    ours = stories.generate("Once upon a time", max_new_tokens=20, **options)
    out = _run_cli("generate", "--model", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", 20,
                   "--temperature", 0.8, "--top-k", 40, "--top-p", 0.95, "--seed", 7, "--attention", "ada",
                   "--tau", 0.3, "--select", "cascade")
    assert out.decode("utf-8", errors="replace") == ours + "\n"


def test_perplexity_equals_the_cli(stories, tmp_path):
    text = ROOT / "tests" / "data" / "text" / "sample.txt"
    ours = stories.perplexity(text, ctx=64, max_windows=3, attention="ada", tau=0.2)
    assert ours["complete"] and len(ours["windows"]) == 3 and ours["ppl"] > 1
    _run_cli("perplexity", "--model", STORIES, "--text", text, "--ctx", 64, "--max-windows", 3, "--attention", "ada",
             "--tau", 0.2, "--quiet", "--json", tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text()) == ours


def test_generate_ignore_eos_and_options(stories):
    # stories260K ends a story by starting the next one (BOS), never with its EOS: both run to the end.
    assert len(stories.tokenize(stories.generate("Once upon a time", 16, ignore_eos=True), add_special=False)) > 0
    assert stories.generate("Once", 16, ignore_eos=True) == stories.generate("Once", 16)
    with pytest.raises(cascade.CascadeError, match="max_new_tokens"):
        stories.generate("Once", -1)
    with pytest.raises(cascade.CascadeError, match="similarity"):
        stories.generate("Once", 4, attention="ada", similarity="dot")
    with pytest.raises(TypeError):
        stories.generate("Once", 4, device="cpu")  # where the model runs is load()'s
    with pytest.raises(cascade.CascadeError, match="computes in f32 only"):
        cascade.load(STORIES, dtype="bf16")
    with pytest.raises(cascade.CascadeError, match="attention_kernel: flash not in"):
        cascade.load(STORIES, attention_kernel="flash")
    with pytest.raises(cascade.CascadeError, match="runs on the GPU"):
        cascade.load(STORIES, attention_kernel="cudnn")


def test_kv_compression_keywords(stories, llama_gqa):
    """The peer KV methods through the keywords the CLI's flags are: the context's own pass is exact
    attention; the budget shows in what is decoded after it; a budget of 1 keeps everything."""
    ids = np.load(DATA / "ref" / "llama_gqa" / "ids.npy")
    exact = llama_gqa.logits(ids)
    np.testing.assert_allclose(llama_gqa.logits(ids, attention="knorm", kv_budget=0.5), exact, rtol=0, atol=1e-5)
    prompt = "Once upon a time there was a little girl named Lily. She loved to play outside in the park"
    full = stories.generate(prompt, max_new_tokens=24)
    assert stories.generate(prompt, max_new_tokens=24, attention="streaming", kv_budget=1.0) == full
    assert stories.generate(prompt, max_new_tokens=24, attention="random", kv_budget=0.3, kv_seed=3)
    with pytest.raises(cascade.CascadeError, match="kv-budget"):
        stories.generate(prompt, max_new_tokens=4, attention="snapkv")
    with pytest.raises(cascade.CascadeError, match=r"\(0, 1\]"):
        stories.generate(prompt, max_new_tokens=4, attention="tova", kv_budget=1.5)


def test_logits_after_a_context(stories):
    """context= prefills its own pass first: exact attention continues it to the one-pass logits; a KV
    compression method continues on the cache it compressed (all of it at budget 1)."""
    ids = stories.tokenize((ROOT / "tests" / "data" / "text" / "sample.txt").read_text(encoding="utf-8"))[:128]
    whole = stories.logits(ids)
    scale = np.abs(whole).max()
    assert np.abs(stories.logits(ids[100:], context=ids[:100]) - whole[100:]).max() <= 1e-4 * scale + 1e-5
    kept_all = stories.logits(ids[100:], context=ids[:100], attention="snapkv", kv_budget=1.0)
    assert np.abs(kept_all - whole[100:]).max() <= 1e-4 * scale + 1e-5
    quarter = stories.logits(ids[100:], context=ids[:100], attention="snapkv", kv_budget=0.25)
    assert np.abs(quarter - whole[100:]).max() > 1e-2 * scale  # three quarters of the context are gone
    with pytest.raises(cascade.CascadeError, match="outside the vocabulary"):
        stories.logits([1, 2], context=[99999])


def test_ada_variant_keywords(stories, llama_gqa):
    """SPEC 6's variants through the keywords the CLI's flags are: dense_layers at the model's depth is
    exact attention, and the trace shows every token kept there; features, rule span and ada-kv run,
    and a bad value is a CascadeError naming the flag."""
    ids = np.load(DATA / "ref" / "llama_gqa" / "ids.npy")
    exact = llama_gqa.logits(ids)
    np.testing.assert_array_equal(llama_gqa.logits(ids, attention="ada", dense_layers=3, tau=0.8), exact)
    layers = llama_gqa.trace(ids, tau=0.8, dense_layers=1, features="keys", rule="span")
    assert len(layers[0]["reps"]) == len(ids) and len(layers[1]["reps"]) < len(ids)
    prompt = "Once upon a time there was a little girl named Lily. She loved to play outside in the park"
    assert stories.generate(prompt, max_new_tokens=8, attention="ada-kv", tau=0.5, sinks=4, window=8)
    with pytest.raises(cascade.CascadeError, match="--ada-features|features"):
        stories.generate(prompt, max_new_tokens=4, attention="ada", features="values")
    with pytest.raises(cascade.CascadeError, match="dense_layers"):
        stories.generate(prompt, max_new_tokens=4, attention="ada", dense_layers=-1)
