"""Cascade from Python: the C++ engine's models, ADA attention, token selection and study.

Design: this file is the public API. It turns Python values into what the extension module
(cascade._cascade, python/src/) takes -- contiguous int32 ids, float32 host arrays, one validated
attention-options object -- and carries the docstrings. The engine does the work with the GIL
released; Ctrl-C stops generate() between tokens and study() between configurations.

    import cascade, numpy as np
    m = cascade.load("models/stories260K/stories260K.bin")   # device="cuda", dtype="bf16" on a GPU
    print(m.generate("Once upon a time", max_new_tokens=32))
    ids = m.tokenize("Once upon a time there was a cat")
    exact = m.logits(ids)                               # numpy float32 [T, vocab]; on cuda a torch tensor
    ada = m.logits(ids, attention="ada", tau=0.3)        # ADA with the exact cascade
    layers = m.trace(ids, tau=0.3)                       # per-layer sets, costs, errors
    sel = cascade.select(np.random.randn(64, 16), tau=0.5)

Every problem with what was given (a file, an option, a token id) raises CascadeError, a ValueError
carrying the engine's message. `python -m cascade ARGS` is the `cascade` command line.
"""

import numpy as np

from . import _cascade
from ._cascade import CascadeError, built_with_cuda, cuda_available

__all__ = ["CascadeError", "Model", "built_with_cuda", "cuda_available", "load", "plot_frontier", "select", "study"]


def _ids(ids):
    """Token ids as a contiguous int32 vector; accepts [T] or [1, T], lists and CPU tensors."""
    a = np.asarray(ids)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise CascadeError(f"token ids must have shape [T] or [1, T], got {list(a.shape)}")
    if a.size and a.dtype.kind not in "iu":
        raise CascadeError(f"token ids must be integers, got dtype {a.dtype}")
    if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
        raise CascadeError("token ids must fit in int32")
    return np.ascontiguousarray(a, dtype=np.int32)


def _torch_or_dlpack(array):
    """A device array from the engine as a torch tensor when torch is installed (imported here, not at
    `import cascade`), else the DLPack-capable array itself."""
    try:
        import torch
    except ImportError:
        return array
    return torch.from_dlpack(array)


def _host_matrix(x):
    """A [T, d] float32 C-contiguous host array from NumPy data or any __dlpack__ object."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        # torch: DLPack refuses tensors that require grad; CUDA tensors are copied to the host and
        # half/bfloat16 widened, since NumPy has no bfloat16.
        x = x.detach().cpu().float()
    if not isinstance(x, np.ndarray) and hasattr(x, "__dlpack__"):
        device_type = x.__dlpack_device__()[0]
        if device_type != 1:  # kDLCPU
            raise CascadeError(f"x is on DLPack device type {device_type}: copy it to host memory first")
        x = np.from_dlpack(x)
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise CascadeError(f"x must be a 2-D array [T, d], got shape {list(a.shape)}")
    return a


class Model:
    """A loaded checkpoint (see load()). Calls are independent: each starts a new sequence."""

    def __init__(self, engine):
        self._engine = engine

    def __repr__(self):
        s = self.spec
        return f"<cascade.Model {s.get('model_type', '?')} from {self._engine.path!r}>"

    @property
    def device(self):
        """Where the model runs: "cpu" or "cuda" (load()'s device)."""
        return self._engine.device

    @property
    def dtype(self):
        """The compute dtype: "f32", "fp16" or "bf16" (load()'s dtype)."""
        return self._engine.dtype

    @property
    def spec(self):
        """The architecture the engine read (ArchSpec::describe()) as a dict."""
        return self._engine.spec

    def logits(self, ids, attention="full", select="cascade", tau=0.30, rule="greedy", similarity="pearson",
               queries="reps", proportional=False, context=None, **compression):
        """Logits of one forward pass over ids ([T] or [1, T]), float32 [T, vocab] whatever the compute
        dtype, never copied: on the CPU a NumPy array that owns the engine's buffer; on the GPU the
        logits stay in device memory, returned as a torch CUDA tensor over it when torch is
        installed (torch.from_dlpack, zero copy), else as an array object with __dlpack__ /
        __dlpack_device__ that any DLPack consumer (torch, CuPy, JAX) takes without a copy. The
        memory lives as long as the tensor or array does. Attention options, as the CLI's flags:

        attention: "full" (exact), "ada" (attention on representative tokens), or a KV compression
            method applied after the exact prefill of ids: "streaming", "snapkv", "tova", "h2o",
            "knorm", "random" or "expected-attention" (the logits of this one pass are then exact;
            generate() decodes on the compressed cache).
        select: with ada, how layer l+1's set comes from layer l's: "full", "cascade" (exact: the
            same set as full), "inherit", "capped:K" or "random[:SEED]" (prefill only).
        tau: Gram threshold in [0, 1); a token is redundant at correlation >= 1 - tau^2.
        rule: "greedy" (against representatives) or "all-earlier".
        similarity: "pearson" (centred) or "cosine".
        queries: "reps" (r x r attention; the others copy their parent's output) or "all".
        proportional: add log n_s to the logit of representative s.
        reconstruct: with queries "reps": "copy" (the parent's output) or "lstsq" (the least-squares
            mix of the outputs of the at most 8 most correlated earlier representatives).
        sinks, window: with queries "all": every query t also sees keys 0..sinks-1 and
            t-window+1..t (non-negative integers, default 0).
        kv_budget: with a KV compression method (required there): the kept fraction of each layer's
            context entries, per KV head, in (0, 1]; kv_seed: the seed of "random".
        gram_precision: with ada on cuda, the selection's Gram: "f16-certified" (default; fp16 tensor
            cores, every undecidable entry recomputed in float64: f64's selection), "f64", "f32" or
            "tf32" (these two may change decisions near theta).
        context: token ids prefilled in a pass of their own before ids (their logits are not returned),
            so that ids run on the cache that pass left: compressed by a KV compression method, or
            extended by ADA's decoding decisions. None: ids start the sequence.
        """
        a = _cascade.Attention(attention=attention, select=select, tau=tau, rule=rule, similarity=similarity,
                               queries=queries, proportional=proportional, **compression)
        out = self._engine.logits(_ids(ids), a, _ids([] if context is None else context))
        return out if self.device == "cpu" else _torch_or_dlpack(out)

    def generate(self, prompt, max_new_tokens=64, temperature=0.0, top_k=0, top_p=1.0, seed=0, ignore_eos=False,
                 **attention):
        """The continuation of prompt (not repeated), as `cascade generate` makes it: the tokenizer's
        BOS first, the prompt prefilled in one pass, then KV-cached decoding until max_new_tokens,
        the end-of-sequence token (unless ignore_eos) or a full context. Greedy when temperature is
        0; otherwise softmax(logits / temperature) within top_k (0: all) and top_p, drawn with seed.
        Keyword attention options as for logits().
        """
        a = _cascade.Attention(**attention)
        text = self._engine.generate(prompt, max_new_tokens, temperature, top_k, top_p, seed, ignore_eos, a)
        return text.decode("utf-8", errors="replace")

    def perplexity(self, text, ctx=0, stride=0, max_windows=0, **attention):
        """Perplexity over a text file, as `cascade perplexity` computes it: the whole file tokenized
        once (BOS first, if the tokenizer has one), windows of ctx tokens (0: the model's context)
        every stride tokens (0: ctx), each scoring the tokens no earlier window scored; max_windows
        stops early (0: all). Keyword attention options as for logits().

        Returns the dict `cascade perplexity --json` writes: model, text, ctx, stride, ppl, nll
        (summed), scored, tokens, complete and windows (begin, end, scored, nll of each).
        """
        a = _cascade.Attention(**attention)
        return self._engine.perplexity(str(text), ctx, stride, max_windows, a)

    def tokenize(self, text, add_special=True):
        """Token ids of text (int32 NumPy array); add_special prepends the tokenizer's prefix
        (e.g. BOS), as Hugging Face's add_special_tokens=True does."""
        return self._engine.tokenize(text, add_special)

    def detokenize(self, ids):
        """Text of ids; special tokens are skipped, bytes that are not UTF-8 become U+FFFD."""
        return self._engine.detokenize(_ids(ids)).decode("utf-8", errors="replace")

    def trace(self, ids, **attention):
        """What ADA did at each layer on one prefill of ids: a list (one per layer) of dicts with
        reps, parents, added, removed (int32 arrays), refreshed, gram_needed, gram_computed (the
        selection's inner products), attention_error (||O_ada - O_full||_F / ||O_full||_F on the same
        layer input) and jaccard_vs_full (the set against the full selection on the same features);
        on the GPU the selections come from the device's ADA and the two measurements are None.
        Keyword attention options as for logits(); attention defaults to "ada" here.
        """
        attention.setdefault("attention", "ada")
        return self._engine.trace(_ids(ids), _cascade.Attention(**attention))


def load(path, device="cpu", tokenizer=None, dtype=None, cuda_graphs="on", attention_kernel="auto"):
    """Loads a checkpoint: a Hugging Face directory (config.json + safetensors), a llama2.c .bin (its
    tokenizer found beside it) or a .gguf file. tokenizer names a tokenizer file or directory that is
    not beside the model; otherwise it is looked up on first use, so a model without one still gives
    logits. Where it runs, as the CLI's --device, --dtype and --cuda-graphs: device "cpu" or "cuda"
    (a CUDA build on a machine with a GPU: cuda_available(); `pip install .` builds the CUDA backend
    wherever nvcc is found), dtype "f32", "fp16" or "bf16" (None: f32 on the CPU, bf16 on cuda),
    cuda_graphs "on" or "off" (repeated forwards replayed as CUDA graphs: exact attention's, and ADA's
    one-token decoding steps), attention_kernel
    "auto", "cascade" or "cudnn" (who runs the GPU's plain causal attention: cuDNN's fused attention
    where it applies and loads, Cascade's kernel, or cuDNN's or an error)."""
    placement = {"device": device, "cuda_graphs": cuda_graphs, "attention_kernel": attention_kernel}
    if dtype is not None:
        placement["dtype"] = dtype
    return Model(_cascade.Model.load(str(path), "" if tokenizer is None else str(tokenizer), **placement))


def select(x, tau=0.30, previous=None, rule="greedy", similarity="pearson", mode="cascade"):
    """SPEC section 1 token selection on an activation matrix x [T, d].

    x: a 2-D float array: NumPy, or any object with __dlpack__ on the CPU (e.g. a torch tensor). A
    torch CUDA tensor is copied to host memory first (the engine runs on the CPU). Computed from
    float32 values, correlations in float64.
    previous: the layer below's result (the dict this returns) or its reps array; None selects from
    scratch (the full selection). With previous, mode says how this layer follows it: "cascade" (the
    exact cascade: the same set as from scratch, at a fraction of the Gram), "full", "inherit",
    "capped:K" or "random[:SEED]".
    rule: "greedy" or "all-earlier" (the cascade needs greedy); similarity: "pearson" or "cosine".

    Returns a dict: reps (sorted int32), parents (int32 [T]; parents[t] == t for representatives),
    added and removed (against previous), gram_needed and gram_computed (inner products the rule
    needs and the kernels computed), refreshed (capped: the cap was passed).
    """
    x = _host_matrix(x)
    prev_reps, prev_T = None, x.shape[0]
    if previous is not None:
        if isinstance(previous, dict):
            prev_reps, prev_T = previous["reps"], len(previous["parents"])
        else:
            prev_reps = previous
        prev_reps = _ids(prev_reps)
    return _cascade.select(x, tau, prev_reps, prev_T, rule, similarity, mode)


def study(model, text, ctx, windows=0, seed=0, tau=0.30, tau_sweep=(), similarity="pearson", capped_k=8,
          out=None, overwrite=False, quiet=False, protocol="prefill", continuation=None, methods=(), budgets=(),
          device=None, dtype=None):
    """The ADA study (`cascade study`) of model on a text file: non-overlapping windows of ctx
    tokens (windows of them drawn with seed; 0: all), exact attention against full, cascade,
    inherit, capped:K, random:SEED, cascade+all-queries, cascade+proportional, exact-trajectory
    (at tau) and cascade@tau=X for X in tau_sweep.

    Returns a dict: params, windows, layers, exact (perplexity and times of exact attention),
    configs ({name: {tau, sweep, exact_trajectory, METRIC: {mean, std, n}}} with METRIC one of
    r_over_T, jaccard_consecutive, gram_needed_savings, ppl_ratio, top1, kl, ... over windows),
    paper_vs_ours, and per_layer: one row per (configuration, window, layer) -- a pandas DataFrame
    when pandas is importable, else a dict of equal-length columns.
    out: also write report.md, metrics.json, per_layer.csv and figures there (and resume a study
    stopped there; overwrite replaces one with other parameters); the dict then lists them as files.
    Progress goes to stderr unless quiet.

    protocol="continuation" (SPEC 8; `cascade study --protocol continuation`): each window's last
    continuation tokens (None: 256) are scored teacher-forced after each configuration processed the
    context; methods lists items "NAME[+VARIANT...]" as --methods does (empty: full, ada and every
    KV method), budgets the KV methods' kept fractions (empty: 0.1, 0.25, 0.5), ADA runs at tau and
    each tau_sweep value. configs is then keyed "snapkv@0.25", "ada@tau=0.3", "full", each with
    method, budget and METRIC one of kept_fraction, ppl_ratio, kl, top1, time_total, ...;
    per_layer holds kept_fraction. device and dtype (None: where the model was loaded) may only
    repeat the model's placement: load the model where the study should run.
    """
    result = _cascade.study(model._engine, str(text), ctx, windows, seed, tau, list(tau_sweep), similarity,
                            capped_k, "" if out is None else str(out), overwrite, quiet, protocol,
                            0 if continuation is None else continuation, [str(m) for m in methods],
                            [float(b) for b in budgets], device or "", dtype or "")
    try:
        import pandas
    except ImportError:
        return result
    result["per_layer"] = pandas.DataFrame(result["per_layer"])
    return result


def plot_frontier(result, path=None, quality="ppl_ratio", against="kept_fraction"):
    """The frontier of a continuation study (the result of study(..., protocol="continuation")) with
    matplotlib, as the report's frontier_kept.svg and frontier_time.svg draw it: one series per
    method, a point per budget or tau at the mean over windows, with the standard deviation as error
    bars. quality: a per-window metric of the configurations ("ppl_ratio", "kl", "top1"); against:
    "kept_fraction" or "time_total" (seconds). The quality axis is logarithmic when the ratios span more
    than x10. Returns the matplotlib Figure, also saved to path when given. Needs matplotlib
    (pip install '.[study]'): ImportError otherwise; ValueError for a prefill-protocol result or a
    metric the study has no figure of."""
    if result.get("params", {}).get("protocol") != "continuation":
        raise ValueError("plot_frontier needs a continuation study: study(..., protocol='continuation')")
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plot_frontier needs matplotlib: pip install matplotlib (or '.[study]')") from e
    series = {}
    for name, c in result["configs"].items():
        for key in (quality, against):
            if key not in c or c[key]["mean"] is None:
                raise ValueError(f"plot_frontier: configuration {name} has no figure '{key}'")
        series.setdefault(c["method"], []).append(
            (c[against]["mean"], c[quality]["mean"], c[quality]["std"] or 0.0, name))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, points in series.items():
        points.sort()
        x, y, err, _ = zip(*points)
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=method)
    values = [p[1] for points in series.values() for p in points if p[1] > 0]
    if quality == "ppl_ratio" and values and max(values) / min(values) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("kept fraction of the KV cache" if against == "kept_fraction" else "context + continuation, s")
    ax.set_ylabel({"ppl_ratio": "ppl_method / ppl_exact", "kl": "KL(exact || method), nats",
                   "top1": "top-1 agreement"}.get(quality, quality))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
