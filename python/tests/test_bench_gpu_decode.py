"""scripts/bench_gpu_decode.py's byte count of a decoding step, on the parameter tables of two published
models (their parameter counts are the independent reference): what a step reads of the weights, with
an untied head (Llama-3-8B) and a tied one with a position table (GPT-2), and ADA's reads beside exact's;
and its bad input: one message and exit code 2 before anything is loaded."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "bench_gpu_decode.py"
spec = importlib.util.spec_from_file_location("bench_gpu_decode", SCRIPT)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def llama3_8b():
    d, kd, ff, vocab = 4096, 1024, 14336, 128256
    n = {"embed": vocab * d, "norm": d, "head": vocab * d}
    for layer in range(32):
        for name, size in {"q": d * d, "k": kd * d, "v": kd * d, "o": d * d, "gate": ff * d, "up": ff * d,
                           "down": ff * d, "ln1": d, "ln2": d}.items():
            n[f"{layer}.{name}"] = size
    return n


def gpt2():
    d, vocab = 768, 50257
    n = {"wte": vocab * d, "wpe": 1024 * d, "ln_f": 2 * d}
    for layer in range(12):
        for name, size in {"ln_1": 2 * d, "c_attn": d * 3 * d + 3 * d, "attn_proj": d * d + d, "ln_2": 2 * d,
                           "c_fc": d * 4 * d + 4 * d, "mlp_proj": 4 * d * d + d}.items():
            n[f"{layer}.{name}"] = size
    return n


def test_llama3_8b_reads_all_but_the_embedding_table():
    n = llama3_8b()
    assert sum(n.values()) == 8_030_261_248  # Meta's Llama-3-8B
    assert bench.weights_read(n, 4096, "embed") == 8_030_261_248 - 128256 * 4096 + 4096


def test_gpt2_reads_its_tied_table_whole_and_one_position_row():
    n = gpt2()
    assert sum(n.values()) == 124_439_808  # OpenAI's GPT-2 small as transformers counts it
    # the head reads the whole table, the lookup its one row again, and one row of the positions
    assert bench.weights_read(n, 768, "wte", "wpe", head_tied=True) == 124_439_808 - 1024 * 768 + 768 + 768


def test_step_bytes_exact_and_ada():
    w = 2 * bench.weights_read(llama3_8b(), 4096, "embed")
    exact = bench.step_bytes(w, 32, 1024, 4096, 2048)
    assert exact - w == 32 * 2048 * 2 * 1024 * 2  # bf16 K and V of 8 heads of 128 at every layer
    # ADA at r/T 0.22: the representatives' K/V plus the selector's bf16 rows (2 d bytes each, and 16
    # bytes of statistics), under exact's whole cache on Llama's shape.
    ada = bench.step_bytes(w, 32, 1024, 4096, 2048, r=0.22 * 2048)
    assert ada - w == pytest.approx(32 * 0.22 * 2048 * (2 * 1024 * 2 + 2 * 4096 + 16), rel=1e-12)
    assert ada < exact


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), "--cascade", "c", "--ada-bench", "b", "--out", "o", *args],
                          capture_output=True, text=True)


def test_bad_input_is_one_message_and_exit_2():
    for args, says in [(["--gen", "0"], "must be at least 1"), (["--prompts", "2k"], "--prompts: comma-separated"),
                       (["--prompts", "2048,0"], "must be at least 1"), (["--fraction", "0"], "--fraction"),
                       (["--fraction", "1.5"], "--fraction")]:
        r = _run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert says in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
