"""cascade on the GPU against the same model on the CPU: logits within the compute dtype's bound, the
logits handed over through DLPack without a copy, ADA's per-layer selections, and errors. Skipped
unless this build has CUDA and a GPU is there (cascade.cuda_available())."""

import numpy as np
import pytest
from conftest import DATA, ROOT, STORIES

import cascade

pytestmark = pytest.mark.skipif(not cascade.cuda_available(), reason="no CUDA build or no GPU")
torch = pytest.importorskip("torch") if cascade.cuda_available() else None

# max |GPU - CPU| over max |CPU logit|: f32 the conformance bound of test_model.py (plus 1e-5 absolute);
# fp16 / bf16 the bounds of the engine's own GPU tests (tests/unit/cuda_model_test.cc).
BOUND = {"f32": 1e-4, "fp16": 2e-2, "bf16": 6e-2}


def _sample_ids(model, n):
    return model.tokenize((ROOT / "tests" / "data" / "text" / "sample.txt").read_text(encoding="utf-8"))[:n]


@pytest.fixture(scope="module")
def cpu():
    return cascade.load(STORIES)


@pytest.fixture(scope="module", params=["f32", "bf16"])
def gpu(request):
    return cascade.load(STORIES, device="cuda", dtype=request.param)


@pytest.mark.parametrize("attention", [dict(attention="full"), dict(attention="ada", tau=0.3)])
def test_logits_match_the_cpu(cpu, gpu, attention):
    """Exact attention in every dtype; ADA in f32, where the GPU makes the CPU's selections (in bf16
    the features round differently, so other tokens may be chosen and the logits are not comparable)."""
    assert gpu.device == "cuda" and cpu.device == "cpu"
    if attention["attention"] == "ada" and gpu.dtype != "f32":
        pytest.skip("ADA's logits are compared in f32")
    ids = _sample_ids(cpu, 96)
    want = cpu.logits(ids, **attention)
    got = gpu.logits(ids, **attention)
    assert isinstance(got, torch.Tensor) and got.is_cuda and got.dtype == torch.float32
    assert tuple(got.shape) == want.shape
    err, scale = np.abs(got.cpu().numpy() - want).max(), np.abs(want).max()
    print(f"{gpu.dtype} {attention}: max |err| / max |ref| = {err / scale:.3g}")
    assert err <= BOUND[gpu.dtype] * scale + (1e-5 if gpu.dtype == "f32" else 0)


def test_logits_after_a_context_match_one_pass(cpu, gpu):
    """context= prefills a pass of its own; with exact attention the continuation's logits are the
    one-pass logits' last rows, on both devices."""
    ids = _sample_ids(cpu, 64)
    whole = gpu.logits(ids).cpu().numpy()
    tail = gpu.logits(ids[40:], context=ids[:40]).cpu().numpy()
    scale = np.abs(whole).max()
    assert np.abs(tail - whole[40:]).max() <= BOUND[gpu.dtype] * scale + 1e-5
    np.testing.assert_allclose(cpu.logits(ids[40:], context=ids[:40]), cpu.logits(ids)[40:], rtol=0, atol=1e-4)


def test_dlpack_shares_device_memory():
    """The engine's array is CUDA memory handed to torch as is: one DLPack export, every later view
    and the tensor Model.logits returns share its data pointer, and the tensor keeps it alive."""
    m = cascade.load(STORIES, device="cuda", dtype="f32")
    raw = m._engine.logits(np.arange(1, 17, dtype=np.int32), cascade._cascade.Attention(), np.zeros(0, np.int32))
    assert tuple(raw.__dlpack_device__()) == (2, 0), "kDLCUDA, device 0: the engine's device buffer"
    a = torch.from_dlpack(raw)
    assert a.is_cuda and tuple(a.shape) == (16, 512)
    b = torch.from_dlpack(a)  # a second view of the same memory
    assert b.data_ptr() == a.data_ptr()
    b[3, 5] = 1234.5  # a write through one view is seen through the other
    assert a[3, 5].item() == 1234.5
    del raw, b  # the tensor keeps the buffer alive
    torch.cuda.synchronize()
    assert a[3, 5].item() == 1234.5
    t = m.logits([1, 2, 3])
    assert torch.from_dlpack(t).data_ptr() == t.data_ptr()


def test_trace_matches_the_cpu(cpu):
    """ADA's selections on the GPU (f32) are the CPU's: every layer's representatives and parents.
    The GPU selects in float64 like the CPU; a token whose correlation lies within rounding of the
    threshold may be decided the other way, so up to T * L / 50 decisions may differ (the bound of
    tests/unit/ada_cuda_test.cc); on this model none did when this was written."""
    gpu = cascade.load(STORIES, device="cuda", dtype="f32")
    ids = _sample_ids(cpu, 96)
    want, got = cpu.trace(ids, tau=0.3), gpu.trace(ids, tau=0.3)
    assert len(got) == len(want) == cpu.spec["n_layers"]
    differing = 0
    for g, c in zip(got, want):
        assert g["parents"].shape == c["parents"].shape == (len(ids),)
        differing += int(np.count_nonzero(g["parents"] != c["parents"]))
        assert g["attention_error"] is None and g["jaccard_vs_full"] is None  # measured on the CPU only
    print(f"trace: {differing} of {len(ids) * len(want)} token decisions differ from the CPU's")
    assert differing <= max(1, len(ids) * len(want) // 50)
    if differing == 0:
        for g, c in zip(got, want):
            np.testing.assert_array_equal(g["reps"], c["reps"])
            np.testing.assert_array_equal(g["added"], c["added"])
            np.testing.assert_array_equal(g["removed"], c["removed"])


def test_placement_keywords():
    m = cascade.load(DATA / "models" / "llama_gqa", device="cuda", dtype="fp16", cuda_graphs="off")
    assert (m.device, m.dtype) == ("cuda", "fp16")
    ids = np.load(DATA / "ref" / "llama_gqa" / "ids.npy")
    ref = np.load(DATA / "ref" / "llama_gqa" / "logits.npy")
    got = m.logits(ids).cpu().numpy()
    assert np.abs(got - ref).max() <= BOUND["fp16"] * np.abs(ref).max()
    assert cascade.load(STORIES, device="cuda").dtype == "bf16"  # the GPU's default
    # Cascade's own kernel for the plain causal case too: the same logits within the dtype's bound.
    own = cascade.load(DATA / "models" / "llama_gqa", device="cuda", dtype="fp16", attention_kernel="cascade")
    assert np.abs(own.logits(ids).cpu().numpy() - ref).max() <= BOUND["fp16"] * np.abs(ref).max()


def test_errors_are_cascade_errors():
    m = cascade.load(STORIES, device="cuda", dtype="f32")
    with pytest.raises(cascade.CascadeError, match="outside the vocabulary"):
        m.logits([1, 99999])
    with pytest.raises(cascade.CascadeError, match="not yet on the GPU"):
        m.logits([1, 2, 3], attention="ada", select="inherit")
    with pytest.raises(cascade.CascadeError, match="compute dtype"):
        cascade.load(STORIES, device="cuda", dtype="f64")
    with pytest.raises(cascade.CascadeError, match="at least one token"):
        m.logits([])
